#!/usr/bin/env bash
# The broker comparison (make compare-brokers; docs/brokers.md): RabbitMQ 4.0 on Debian 13 hosts
# against RabbitMQ 3.10 on Debian 12 hosts, on this machine's lab, one release after the other:
#   1. each release's default lab: the brokers spec (k6/sweeps/brokers.yml: the seed's async path
#      at 100-400/s, 3 repeats), then the capacity of the default publisher with confirms
#      (fab capacity --mode async), COMPARE_CAPACITY_REPEATS times;
#   2. each release's cluster profile: the cluster spec (quorum queues on 3 nodes, a node killed).
# Into results/RUN/<release>/{brokers,capacity-rN,cluster}, each a run folder of its own with
# its report; then python -m offload_lab.analysis.broker_comparison results/RUN writes comparison.md and
# comparison.json there. The lab goes down at the end. About 75 minutes on the 2-vCPU VM.
#   scripts/compare-brokers.sh [RUN]   RUN defaults to YYYYmmdd-HHMMSS-brokers
# Environment: COMPARE_RELEASES [trixie bookworm], COMPARE_CAPACITY_REPEATS [3],
# COMPARE_PARTS [default cluster] (which of 1. and 2. to run; RUN may then exist already).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:/usr/local/go/bin:$PATH"

run=${1:-$(date -u +%Y%m%d-%H%M%S)-brokers}
releases=${COMPARE_RELEASES:-trixie bookworm}
capacity_repeats=${COMPARE_CAPACITY_REPEATS:-3}
parts=${COMPARE_PARTS:-default cluster}
out=results/$run

die() { printf 'compare-brokers: ERROR: %s\n' "$*" >&2; exit 1; }
note() { printf '\n==> compare-brokers: %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

# bad settings stop here, before any lab is touched or any load sent
[[ $capacity_repeats =~ ^[1-9][0-9]?$ ]] || die "COMPARE_CAPACITY_REPEATS must be 1-99, not '$capacity_repeats'"
for part in $parts; do
  [[ $part =~ ^(default|cluster)$ ]] || die "COMPARE_PARTS: no part '$part' (default, cluster)"
done
[[ $run =~ ^[A-Za-z0-9._-]+$ ]] || die "RUN must be a plain folder name, not '$run'"
for release in $releases; do
  python3 -c 'import sys; from lab.plan import RELEASES; sys.exit(sys.argv[1] not in RELEASES)' "$release" \
    || die "no lab release '$release' (lab/plan.py RELEASES)"
done
for release in $releases; do
  for part in $parts; do
    folder=$out/$release/$([ "$part" = default ] && echo brokers || echo cluster)
    [ -e "$folder" ] && die "$folder exists: give another RUN"
  done
done
fab check --spec brokers --spec-only >/dev/null
fab check --spec cluster --spec-only >/dev/null
mkdir -p "$out"
trap 'lab/labctl down >/dev/null 2>&1 || true' EXIT

provision() {  # $1 release, $2 log name
  ansible-playbook site.yml >"$out/$1/$2" 2>&1 || die "site.yml failed on $1 (log $out/$1/$2)"
}

wants() { [[ " $parts " == *" $1 "* ]]; }

for release in $releases; do
  wants default || break
  mkdir -p "$out/$release"
  note "$release: lab up"
  lab/labctl down >/dev/null
  lab/labctl up --release "$release"
  provision "$release" provision.log
  note "$release: the brokers spec"
  fab sweep --spec brokers --results-dir "$out/$release" --run-id brokers
  for r in $(seq 1 "$capacity_repeats"); do
    note "$release: capacity, repeat $r of $capacity_repeats"
    fab capacity --mode async --results-dir "$out/$release" --run-id "capacity-r$r"
  done
done
if wants cluster; then
  for release in $releases; do
    mkdir -p "$out/$release"
    note "$release: cluster profile"
    lab/labctl down >/dev/null
    lab/labctl up --profile cluster --release "$release"
    provision "$release" provision-cluster.log
    fab sweep --spec cluster --results-dir "$out/$release" --run-id cluster
  done
fi
for folder in "$out"/*/brokers "$out"/*/cluster; do
  [ -d "$folder" ] && python -m offload_lab.analysis "$folder" -q
done
if compgen -G "$out/*/brokers/run.json" >/dev/null; then
  python -m offload_lab.analysis.broker_comparison "$out"
fi
note "done: $out"
