#!/usr/bin/env bash
# The end-to-end test on the local lab: lab up, site.yml, site.yml again (changed=0 asserted),
# the quick sweep (every point twice, with a gateway setting switched), its report with index.html
# checked in headless Chromium, assertions on the numbers, the samples and the provisioned hosts,
# lab down. Everything logs in as the lab's `admin` (root may not log in) and uses sudo for root.
# Every step is timed into $E2E_DIR/timings.txt.
# E2E_RELEASE: the hosts' Debian release [trixie: Debian 13, RabbitMQ 4.0]; bookworm (Debian 12,
# RabbitMQ 3.10) is `make e2e-bookworm`, which skips the lab's own lifecycle test (release-blind).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:/usr/local/go/bin:$PATH"

E2E_DIR=${E2E_DIR:-build/e2e}
rm -rf "$E2E_DIR"; mkdir -p "$E2E_DIR"
timings="$E2E_DIR/timings.txt"

step() {
  local name=$1; shift
  printf '\n==> e2e: %s\n' "$name"
  local t0=$SECONDS
  if ! "$@"; then
    printf 'e2e: step "%s" failed\n' "$name" >&2
    return 1
  fi
  printf '%-28s %4ds\n' "$name" $((SECONDS - t0)) | tee -a "$timings"
}

keep_lab=${E2E_KEEP_LAB:-0}
release=${E2E_RELEASE:-trixie}
# on failure the services' journals are kept (and their tails printed) before the lab goes
collect_logs() {
  [ -f .lab/ssh/config ] || return 0
  local host
  for host in broker gateway core loadgen; do
    timeout 20 ssh -F .lab/ssh/config "$host" \
      'sudo -n journalctl --no-pager -u "offload-*" -u rabbitmq-server --since "-30min"' \
      > "$E2E_DIR/journal-$host.log" 2>&1 || true
  done
  grep -hiE 'warning|error|traceback|fail' "$E2E_DIR"/journal-*.log | tail -40 || true
}
cleanup() {
  local rc=$?
  if [ $rc -ne 0 ]; then collect_logs; fi
  [ "$keep_lab" = 1 ] || lab/labctl down || true
}
trap cleanup EXIT

playbook_logged() { ansible-playbook site.yml 2>&1 | tee "$E2E_DIR/$1"; }

run_id="e2e-$(date -u +%Y%m%d-%H%M%S)"
# the lab's own test: up, checks over real SSH, up again is a no-op, down leaves nothing behind
if [ "$release" = trixie ]; then
  step "lab lifecycle" pytest -q -p no:cacheprovider -m lab tests/lab
fi
step "lab up ($release)" lab/labctl up --release "$release"
step "provision (site.yml)" playbook_logged provision-1.log
step "provision again" playbook_logged provision-2.log
step "idempotence" scripts/assert-recap-unchanged.sh "$E2E_DIR/provision-2.log"
# one more gunicorn worker than provisioned: fab writes the root-only sweep env file and restarts
# the gateway through sudo; tests/e2e check the steps recorded it and the gateway ran with it
step "quick sweep" fab sweep --spec quick --repeat 2 --gateway GUNICORN_WORKERS=3 --run-id "$run_id"
step "report" python -m offload_lab.analysis "results/$run_id"
# retries with backoff on the real broker: transient and permanent failures on both paths
step "failures sweep" fab sweep --spec failures-quick --run-id "$run_id-failures"
step "assertions" env E2E_RUN_DIR="results/$run_id" E2E_FAILURES_RUN_DIR="results/$run_id-failures" \
  pytest -q -p no:cacheprovider -m e2e tests/e2e
cp -r "results/$run_id" "$E2E_DIR/run"
cp -r "results/$run_id-failures" "$E2E_DIR/failures"
echo; cat "$timings"
