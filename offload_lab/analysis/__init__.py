"""offload-lab analysis: read one run folder (run.json + steps/*.json), write its report.

`python -m offload_lab.analysis RUN_DIR` writes RUN_DIR/report/ (PNG charts, summary.md,
summary.csv); `python -m offload_lab.analysis --compare RUN_A RUN_B` overlays two runs. The
analysis reads nothing but the run folder, so a run from real VMs and one from the lab give the
same report.
"""

from .load import LoadedStep, LoadError, Run, load_run
from .metrics import StepMetrics, compute_metrics
from .report import compare_runs, make_report
from .run_report import ReportResult

__all__ = [
    "LoadError",
    "ReportResult",
    "Run",
    "LoadedStep",
    "StepMetrics",
    "compare_runs",
    "compute_metrics",
    "load_run",
    "make_report",
]
