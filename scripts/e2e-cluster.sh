#!/usr/bin/env bash
# The cluster profile end to end (make e2e-cluster): whatever lab is up goes down, the cluster
# profile comes up (3 brokers, 2 gateways, 2 cores, 2 loadgens), site.yml twice (changed=0 the
# second time), the cluster sweep (k6/sweeps/cluster.yml: quick's rates split over both load
# generators, then async with broker node 2 killed mid-step), its report, and the assertions of
# tests/e2e/test_e2e_cluster.py; the lab goes down at the end (E2E_KEEP_LAB=1 keeps it).
# E2E_RELEASE as in scripts/e2e.sh. Built like scripts/e2e.sh; every step is timed into $E2E_DIR/timings.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:/usr/local/go/bin:$PATH"

E2E_DIR=${E2E_DIR:-build/e2e-cluster}
rm -rf "$E2E_DIR"; mkdir -p "$E2E_DIR"
timings="$E2E_DIR/timings.txt"

step() {
  local name=$1; shift
  printf '\n==> e2e-cluster: %s\n' "$name"
  local t0=$SECONDS
  if ! "$@"; then
    printf 'e2e-cluster: step "%s" failed\n' "$name" >&2
    return 1
  fi
  printf '%-28s %4ds\n' "$name" $((SECONDS - t0)) | tee -a "$timings"
}

keep_lab=${E2E_KEEP_LAB:-0}
release=${E2E_RELEASE:-trixie}  # the hosts' Debian release (lab/labctl up --release)
hosts=$(python3 -c 'from lab.plan import PROFILES; print(" ".join(PROFILES["cluster"]))')
# on failure the services' journals are kept (and their tails printed) before the lab goes
collect_logs() {
  [ -f .lab/ssh/config ] || return 0
  local host
  for host in $hosts; do
    timeout 20 ssh -F .lab/ssh/config "$host" \
      'sudo -n journalctl --no-pager -u "offload-*" -u rabbitmq-server --since "-40min"' \
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

run_id="e2e-cluster-$(date -u +%Y%m%d-%H%M%S)"
step "lab down (any profile)" lab/labctl down
step "lab up --profile cluster ($release)" lab/labctl up --profile cluster --release "$release"
step "provision (site.yml)" playbook_logged provision-1.log
step "provision again" playbook_logged provision-2.log
step "idempotence" scripts/assert-recap-unchanged.sh "$E2E_DIR/provision-2.log"
step "cluster sweep" fab sweep --spec cluster --run-id "$run_id"
step "report" python -m offload_lab.analysis "results/$run_id"
step "assertions" env E2E_RUN_DIR="results/$run_id" \
  pytest -q -p no:cacheprovider -m e2e tests/e2e/test_e2e_cluster.py
cp -r "results/$run_id" "$E2E_DIR/run"
echo; cat "$timings"
