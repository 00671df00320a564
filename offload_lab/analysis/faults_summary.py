"""Nothing lost under faults (k6/sweeps/faults.yml, published in docs/results/faults), in one
table (docs/publications/faults.md): per step, the fault, the ledger's count by task id (the only
"lost" there is), and what the clients saw after the fault (analysis.ledger_tables reads each
step).

The block `faults` of offload_lab.analysis.generated_blocks."""

from __future__ import annotations

from typing import Any

from .fmt import NA, fmt_int
from .ledger import step_ledger
from .ledger_tables import step_faults
from .load import LoadedStep, Run

COLUMNS = (
    "step",
    "fault",
    "202s",
    "done",
    "lost",
    "duplicated",
    "done, not accepted",
    "503s after the fault",
    "errors after the fault",
    "recovery (s)",
)


def _n(value: Any) -> str:
    return NA if value is None else fmt_int(value)


def fault_text(fault: dict[str, Any]) -> str:
    at = fault.get("offset_s", fault.get("at_s"))
    text = str(fault.get("action"))
    if fault.get("duration_s"):
        text += f" for {fault['duration_s']:g} s"
    if at is not None:
        text += f" at {float(at):.0f} s"
    return text if fault.get("ok", True) else f"{text} (not performed: {fault.get('error') or '?'})"


def step_row(run: Run, step: LoadedStep) -> list[str]:
    faults = step_faults(run.path, step)
    fault = faults[0] if faults else {}
    ledger = step_ledger(run.path, step) if step.mode == "async" else None
    ledger = ledger if isinstance(ledger, dict) and "error" not in ledger else {}
    recovery = fault.get("recovery_s")
    return [
        f"{step.mode} {step.label or ''}".strip(),
        fault_text(fault) if fault else "none",
        _n(ledger.get("accepted")),
        _n(ledger.get("done")),
        _n(ledger.get("lost")),
        _n(ledger.get("duplicated")),
        _n(ledger.get("done_not_accepted")),
        _n(fault.get("rejected_503")) if fault else NA,
        _n(fault.get("errors")) if fault else NA,
        NA if recovery is None else f"{recovery:.1f}",
    ]


def readme_block(run: Run) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---" + "|---:" * (len(COLUMNS) - 2) + "|"]
    lines += ["| " + " | ".join(step_row(run, step)) + " |" for step in run.steps]
    meta = run.meta
    lines += [
        "",
        f"From {run.path.name}/run.json: commit {str(meta.git_commit or '?')[:7]}"
        f"{' (dirty)' if meta.git_dirty else ''}, {len(run.steps)} steps. Lost: accepted task "
        "ids the ledger holds no outcome for (n/a: no ledger, as on the sync path).",
    ]
    return "\n".join(lines)
