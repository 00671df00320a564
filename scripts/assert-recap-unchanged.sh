#!/usr/bin/env bash
# Fails unless every host in an ansible-playbook log's PLAY RECAP has changed=0 and failed=0.
set -euo pipefail
log=$1
recap=$(sed -n '/PLAY RECAP/,$p' "$log")
[ -n "$recap" ] || { echo "no PLAY RECAP in $log" >&2; exit 1; }
bad=$(grep -E 'changed=[1-9]|failed=[1-9]|unreachable=[1-9]' <<<"$recap" || true)
if [ -n "$bad" ]; then
  echo "a second site.yml run was not idempotent:" >&2
  echo "$bad" >&2
  grep -E '^(changed|failed):' "$log" >&2 || true
  exit 1
fi
echo "idempotent: $(grep -c 'changed=0' <<<"$recap") hosts with changed=0"
