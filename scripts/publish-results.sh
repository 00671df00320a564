#!/usr/bin/env bash
# Copies a whole run folder into docs/results/NAME/ and writes its report there, so that every
# figure the README and docs/publications quote can be traced to the raw data it came from:
#   scripts/publish-results.sh results/<run-id> NAME
# The folder keeps run.json, every step's JSON (k6 summary, core stats, queue and CPU second by
# second), every step's per-request samples (samples/*.csv.gz), the core's outcome records
# (outcomes/*.jsonl.gz, the ledger by task id), the dead letters a step looked at
# (dead_letters/*.jsonl.gz), a `fab capacity` run's capacity.json and capacity.md, and report/
# (charts, timelines, summary.md, summary.csv, index.html).
# A capacity suite (`fab capacity --suite`: capacity.json of kind capacity-suite, no run.json)
# is published as its table (capacity.json, capacity.md, suite.yml) and each subject the table
# lists, copied like a run (subjects run again with --only leave their old folder in _replaced/,
# which is not published); its report/ has the capacity chart and the warnings of every subject,
# whose own reports are left out to keep the publication's weight down.
# A broker comparison (scripts/compare-brokers.sh: RELEASE/brokers and other RELEASE/RUN folders) is
# published as each release's runs, the brokers and cluster runs with their report, the capacity
# runs with their capacity.md only, and the comparison written from the copies.
# `python -m offload_lab.analysis docs/results/NAME` rebuilds report/ (and a suite's subjects' reports).
# A run that ran with uncommitted changes (run.json git_dirty, its git.diff beside it) is refused:
# a publication describes one commit.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:?usage: $0 RUN_DIR NAME}
name=${2:?usage: $0 RUN_DIR NAME}
dest=docs/results/$name

refuse_dirty() {  # refuse_dirty RUN_DIR: exit unless run.json names a clean commit
  .venv/bin/python -c 'import sys
from offload_lab.records import RecordError, read_run
try:
    meta = read_run(sys.argv[1])
except RecordError as exc:
    sys.exit(f"{sys.argv[1]}: not published: its run.json is no run record ({exc})")
if meta.git_dirty is not False or not meta.git_commit:
    sys.exit(f"{sys.argv[1]}: not published: git_dirty is {meta.git_dirty!r} (uncommitted changes: "
             "see its git.diff; or no known commit). Commit, then run it again.")' "$1"
}

copy_run() {  # copy_run SRC DEST: one run folder's raw data
  local src=$1 to=$2
  mkdir -p "$to"
  cp "$src/run.json" "$to/"
  cp -r "$src/steps" "$to/steps"
  for raw in samples outcomes dead_letters; do  # per-request samples; the ledger; the dead letters
    if [ -d "$src/$raw" ]; then cp -r "$src/$raw" "$to/$raw"; fi
  done
  for result in capacity.json capacity.md; do  # a `fab capacity` run's result
    if [ -f "$src/$result" ]; then cp "$src/$result" "$to/"; fi
  done
}

suite_subjects() {  # suite_subjects DIR: the subject folders its suite lists ("" when it is no suite)
  .venv/bin/python -c 'import sys
from offload_lab.records import CAPACITY_FILE, is_suite_table, read_json, read_suite
if is_suite_table(read_json(sys.argv[1] + "/" + CAPACITY_FILE)):
    print("\n".join(row["folder"] for row in read_suite(sys.argv[1]).subjects))' "$1"
}

report_options=() comparison=
# every run is checked before the old publication is removed
if [ -f "$run/run.json" ]; then
  refuse_dirty "$run"
  rm -rf "$dest"
  copy_run "$run" "$dest"
elif [ -f "$run/capacity.json" ] && subjects=$(suite_subjects "$run") && [ -n "$subjects" ]; then
  while IFS= read -r subject; do
    [ -f "$run/$subject/run.json" ] || { echo "$run/$subject: listed in capacity.json, no run.json" >&2; exit 1; }
    refuse_dirty "$run/$subject"
  done <<< "$subjects"
  rm -rf "$dest"; mkdir -p "$dest"
  report_options=(--no-subject-reports)
  cp "$run/capacity.json" "$run/capacity.md" "$dest/"
  if [ -f "$run/suite.yml" ]; then cp "$run/suite.yml" "$dest/"; fi
  while IFS= read -r subject; do
    copy_run "$run/$subject" "$dest/$subject"
  done <<< "$subjects"
elif compgen -G "$run/*/brokers/run.json" >/dev/null; then  # a release's brokers run: a comparison
  mapfile -t runs < <(cd "$run" && find . -mindepth 3 -maxdepth 3 -name run.json -printf '%h\n' | sed 's#^\./##' | sort)
  for each in "${runs[@]}"; do refuse_dirty "$run/$each"; done
  rm -rf "$dest"; mkdir -p "$dest"
  for each in "${runs[@]}"; do
    copy_run "$run/$each" "$dest/$each"
    case ${each##*/} in
      capacity-r*) ;;  # capacity.md is its result; a report per search would only add weight
      *) .venv/bin/python -m offload_lab.analysis "$dest/$each" -q >/dev/null ;;
    esac
  done
  comparison=yes
else
  echo "$run has no run.json (and is no capacity suite or broker comparison)" >&2; exit 1
fi
if [ -n "$comparison" ]; then
  .venv/bin/python -m offload_lab.analysis.broker_comparison "$dest" >/dev/null
else
  .venv/bin/python -m offload_lab.analysis "$dest" -q "${report_options[@]}" >/dev/null
fi
echo "published $run -> $dest ($(du -sh "$dest" | cut -f1))"
