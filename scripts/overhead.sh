#!/usr/bin/env bash
# What the sweep's own instruments cost (make overhead; docs/measurement.md, "Instruments and
# their cost"): on the provisioned lab, k6/sweeps/overhead.yml (async at 400/s) then
# overhead-sync.yml (sync at 100/s), each with every instrument off, each alone and all on,
# interleaved, 3 repeats; into results/RUN/{async,sync}, then python -m analysis.overhead
# writes results/RUN/overhead.md and overhead.json. About 30 minutes; keep the machine
# otherwise idle.
#   scripts/overhead.sh [RUN]   RUN defaults to YYYYmmdd-HHMMSS-overhead
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:/usr/local/go/bin:$PATH"

run=${1:-$(date -u +%Y%m%d-%H%M%S)-overhead}
out=results/$run
die() { printf 'overhead: ERROR: %s\n' "$*" >&2; exit 1; }
[[ $run =~ ^[A-Za-z0-9._-]+$ ]] || die "RUN must be a plain folder name, not '$run'"
[ -e "$out" ] && die "$out exists: give another RUN"
# both specs and the lab checked before any load
fab check --spec overhead --preflight >/dev/null
fab check --spec overhead-sync --spec-only >/dev/null
mkdir -p "$out"
fab sweep --spec overhead --results-dir "$out" --run-id async
fab sweep --spec overhead-sync --results-dir "$out" --run-id sync
for folder in "$out"/async "$out"/sync; do
  python -m analysis "$folder" -q
done
python -m analysis.overhead "$out"
