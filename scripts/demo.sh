#!/usr/bin/env bash
# The main job on a fresh machine: lab up, provision it, run a sweep, write its report.
#   scripts/demo.sh [SPEC]      SPEC defaults to quick (k6/sweeps/quick.yml)
# The lab stays up afterwards for more sweeps (`fab sweep --spec seed`); `make lab-down` ends it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:/usr/local/go/bin:$PATH"
spec=${1:-quick}

# a spec or override that cannot run stops here, before the lab is touched
fab check --spec "$spec" --spec-only
lab/labctl up
ansible-playbook site.yml
run_id="$(date -u +%Y%m%d-%H%M%S)-$spec"
fab sweep --spec "$spec" --run-id "$run_id"
python -m offload_lab.analysis "results/$run_id"
echo
echo "report (one page, opens offline): $PWD/results/$run_id/report/index.html"
echo "tables: $PWD/results/$run_id/report/summary.md, summary.csv; raw data: $PWD/results/$run_id/"
