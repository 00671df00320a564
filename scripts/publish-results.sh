#!/usr/bin/env bash
# Copies a whole run folder into docs/results/NAME/ and writes its report there, so that every
# figure in the README can be traced to the raw data it came from:
#   scripts/publish-results.sh results/<run-id> NAME
# The folder keeps run.json, every step's JSON (k6 summary, core stats, queue and CPU second by
# second), every step's per-request samples (samples/*.csv.gz), the core's outcome records
# (outcomes/*.jsonl.gz, the ledger by task id) and report/ (charts, timelines,
# summary.md, summary.csv, index.html). `python -m analysis docs/results/NAME` rebuilds report/.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:?usage: $0 RUN_DIR NAME}
name=${2:?usage: $0 RUN_DIR NAME}
[ -f "$run/run.json" ] || { echo "$run has no run.json" >&2; exit 1; }
dest=docs/results/$name
rm -rf "$dest"; mkdir -p "$dest"
cp "$run/run.json" "$dest/"
cp -r "$run/steps" "$dest/steps"
for raw in samples outcomes; do  # per-request samples; the core's outcome records (the ledger)
  if [ -d "$run/$raw" ]; then cp -r "$run/$raw" "$dest/$raw"; fi
done
.venv/bin/python -m analysis "$dest" -q >/dev/null
echo "published $run -> $dest ($(du -sh "$dest" | cut -f1))"
