"""The ledger and faults tables: per async step, what the clients were told 202 for against the
core's outcome records, and what each fault did. Both are rebuilt here from the run folder's raw
files (samples/<step>.csv.gz and outcomes/<step>.jsonl.gz; offload_lab/analysis/ledger.py) when they are
there, so each figure traces back to them; else the step JSON's own figures are shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .fmt import NA, fmt_int
from .ledger import fault_effects, read_requests, step_ledger
from .load import LoadedStep, Run
from .table_model import Table


def _step_name(step: LoadedStep) -> str:
    label = f" [{step.label}]" if step.label != step.mode else ""
    repeat = f" r{step.repeat}" if step.repeat > 1 else ""
    return f"{step.mode}{label} {step.rate:g}/s{repeat}"


def step_faults(run_dir: Path, step: LoadedStep) -> list[dict[str, Any]]:
    faults = [f for f in step.faults if isinstance(f, dict)]
    samples = run_dir / step.samples_file if step.samples_file else None
    load_end = (step.clock or {}).get("load_ended_unix_s")
    if faults and samples and samples.is_file() and load_end:
        expected = 200 if step.mode == "sync" else 202
        return fault_effects(read_requests(samples), faults, float(load_end), expected)
    return faults


def _n(value: Any) -> str:
    return NA if value is None else fmt_int(value)


def ledger_table(run: Run) -> Table | None:
    rows = []
    for step in run.steps:
        if step.ledger is None:
            continue
        ledger = step_ledger(run.path, step)
        if "error" in ledger:
            rows.append([_step_name(step), *([NA] * 9), f"no ledger: {ledger['error']}"])
            continue
        lost = ledger.get("lost")
        verdict = NA if lost is None else ("nothing lost" if lost == 0 else f"{lost:,} LOST")
        if lost and ledger.get("under_way"):
            verdict += f" ({ledger['under_way']:,} still waiting for a retry)"
        rows.append(
            [
                _step_name(step),
                _n(ledger.get("accepted")),
                _n(ledger.get("done")),
                _n(ledger.get("dead_lettered")),
                _n(ledger.get("retried_tasks")),
                _by_broker(ledger),
                _n(ledger.get("still_queued")),
                _n(lost),
                _n(ledger.get("duplicated")),
                _n(ledger.get("done_not_accepted")),
                verdict,
            ]
        )
    if not rows:
        return None
    return Table(
        "Ledger by task id (async steps)",
        [
            "step",
            "accepted (202)",
            "done",
            "dead-lettered",
            "retried",
            "dead-lettered by broker",
            "still queued",
            "lost",
            "duplicated",
            "done, not accepted",
            "verdict",
        ],  # fmt: skip
        rows,
        notes=[
            "Accepted: the task ids k6 got a 202 for (samples). Done, dead-lettered: distinct ids in "
            "the core's outcome records, written before each ack (to its ledger file, or confirmed "
            "to tasks.done on the broker: the step's instruments). Retried: distinct ids with a failed "
            "attempt sent to a delay queue (not an outcome: the task went on; older runs: n/a). "
            "Dead-lettered by broker: accepted ids without a record found in the dead-letter queue "
            "(tasks.dead), e.g. a quorum queue's delivery limit reached, with the x-death reason. Lost: "
            "accepted, never done or dead-lettered (a task still waiting for a retry included), and more "
            "than what is still queued. Duplicated: "
            "ids recorded more than once (redeliveries). Done, not accepted: done without a 202 (a "
            "timeout or error at the client)."
        ],
    )


def _by_broker(ledger: dict[str, Any]) -> str:
    """The count with its x-death reasons, e.g. '3 (delivery_limit 3)'; n/a if not looked at."""
    n = ledger.get("dead_lettered_by_broker")
    reasons = ledger.get("dead_lettered_by_broker_reasons") or {}
    if not n:
        return _n(n)
    return f"{fmt_int(n)} (" + ", ".join(f"{reason} {count:,}" for reason, count in reasons.items()) + ")"


def _s(value: Any) -> str:
    return NA if value is None else f"{value:.1f}"


def faults_table(run: Run) -> Table | None:
    rows = []
    for step in run.steps:
        for fault in step_faults(run.path, step):
            drain = (step.broker or {}).get("drain_s")
            ok = "yes" if fault.get("ok") else f"no: {fault.get('error') or '?'}"
            rows.append(
                [
                    _step_name(step),
                    str(fault.get("action")),
                    _s(fault.get("offset_s", fault.get("at_s"))),
                    ok,
                    _n(fault.get("requests")),
                    _n(fault.get("rejected_503")),
                    _n(fault.get("errors")),
                    _s(fault.get("recovery_s")),
                    _s(drain) if step.mode == "async" else NA,
                ]
            )
    if not rows:
        return None
    return Table(
        "Faults",
        ["step", "fault", "at s", "performed", "requests after", "503s", "errors", "recovery s", "drain s"],
        rows,
        notes=[
            "Requests after: started between the fault and the next fault or the end of load; 503s and "
            "errors among them (errors include the 503s). Recovery: from the fault to the first expected "
            "answer after the last failed request (0: the clients saw nothing)."
        ],
    )
