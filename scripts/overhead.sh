#!/usr/bin/env bash
# What the sweep's own instruments cost (make overhead; docs/measurement.md, "Instruments and
# their cost"): on the provisioned lab, k6/sweeps/overhead.yml (async at 400/s) then
# overhead-sync.yml (sync at 100/s), each with every instrument off, each alone and all on, then
# overhead-stats.yml (async at 400/s, the broker's statistics every 1 s and every 5 s), each
# interleaved, 3 repeats; then overhead-total.yml (async at 400/s, all off against all on, 8
# repeats); into results/RUN/{async,sync,stats,total}, then python -m offload_lab.analysis.overhead
# writes results/RUN/overhead.md and overhead.json. About 40 minutes; keep the machine
# otherwise idle. OVERHEAD_PARTS (async sync stats total) runs some of them (RUN may then exist).
#   scripts/overhead.sh [RUN]   RUN defaults to YYYYmmdd-HHMMSS-overhead
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:/usr/local/go/bin:$PATH"

run=${1:-$(date -u +%Y%m%d-%H%M%S)-overhead}
parts=${OVERHEAD_PARTS:-async sync stats total}
out=results/$run
die() { printf 'overhead: ERROR: %s\n' "$*" >&2; exit 1; }
spec_of() { case $1 in async) echo overhead ;; sync) echo overhead-sync ;; stats) echo overhead-stats ;; total) echo overhead-total ;; *) return 1 ;; esac; }
[[ $run =~ ^[A-Za-z0-9._-]+$ ]] || die "RUN must be a plain folder name, not '$run'"
# every spec and the lab checked before any load
for part in $parts; do
  spec=$(spec_of "$part") || die "OVERHEAD_PARTS: no part '$part' (async, sync, stats, total)"
  [ -e "$out/$part" ] && die "$out/$part exists: give another RUN"
  fab check --spec "$spec" --spec-only >/dev/null
done
fab check --spec overhead --preflight >/dev/null
mkdir -p "$out"
for part in $parts; do
  fab sweep --spec "$(spec_of "$part")" --results-dir "$out" --run-id "$part"
  python -m offload_lab.analysis "$out/$part" -q
done
python -m offload_lab.analysis.overhead "$out"
