#!/usr/bin/env bash
# Copies a run's description, per-step summaries and report into docs/results/NAME/, so that
# the figures shown in the README can be traced to the JSON they came from:
#   scripts/publish-results.sh results/<run-id> NAME
# (k6's per-step summary JSON is aggregated; no per-request data exists in a run folder.)
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:?usage: $0 RUN_DIR NAME}
name=${2:?usage: $0 RUN_DIR NAME}
[ -f "$run/run.json" ] || { echo "$run has no run.json" >&2; exit 1; }
.venv/bin/python -m analysis "$run" -q >/dev/null
dest=docs/results/$name
rm -rf "$dest"; mkdir -p "$dest"
cp "$run/run.json" "$dest/"
cp -r "$run/steps" "$dest/steps"
cp "$run"/report/*.png "$run"/report/summary.md "$run"/report/summary.csv "$dest/"
echo "published $run -> $dest"
