"""The report's failures section (issue 22): per step, what failures cost each path, as tables
(offload_lab/analysis/failures.py gathers the figures from the run folder's raw files). A step shows up when
it ran with failures set (the core's TRANSIENT_FAIL_RATE, PERMANENT_FAIL_RATE, or the older
FAIL_RATE), or something failed, was retried or waited in a delay queue."""

from __future__ import annotations

from typing import Any

from .delay_queues import DelayQueue, per_second
from .failures import (
    UNKNOWN_ATTEMPT,
    AsyncFailures,
    SyncFailures,
    async_failures,
    fails_by_setting,
    failure_settings,
    sync_failures,
)
from .fmt import NA, fmt_int, fmt_ms
from .ledger_tables import _step_name
from .load import LoadedStep, Run
from .metrics import compute_metrics
from .table_model import Table

PER_SECOND_SHOWN = 60  # depths shown per delay queue; the timeline has them all


def _n(value: Any) -> str:
    return NA if value is None else fmt_int(value)


def settings_text(settings: dict[str, str]) -> str:
    """e.g. "transient 0.1, permanent 0.001, delays 1000,4000,16000 ms"; "-" when none."""
    names = {
        "TRANSIENT_FAIL_RATE": "transient {}",
        "PERMANENT_FAIL_RATE": "permanent {}",
        "FAIL_RATE": "FAIL_RATE {}",
        "RETRY_DELAYS_MS": "delays {} ms",
        "RETRY_QUEUE_MAX_LENGTH": "delay queues at most {}",
    }
    parts = [text.format(settings[key] or "none") for key, text in names.items() if key in settings]
    return ", ".join(parts) or "-"


def _attempts(by_attempt: dict[int, int]) -> str:
    known = {a: n for a, n in by_attempt.items() if a != UNKNOWN_ATTEMPT}
    if not known:
        return ""
    if len(known) == 1:
        return f" (attempt {next(iter(known))})"
    return " (attempts " + ", ".join(f"{a}: {n:,}" for a, n in known.items()) + ")"


def dead_text(failures: AsyncFailures) -> str:
    """e.g. "permanent 2 (attempt 1); exhausted 1 (attempt 4)"; "0" when none."""
    parts = [
        f"{reason} {sum(by.values()):,}{_attempts(by)}"
        for reason, by in failures.dead_by_reason.items()
        if sum(by.values())
    ]
    return "; ".join(parts) or "0"


def done_after_text(failures: AsyncFailures) -> str:
    """Tasks done after 2, 3, ... attempts, e.g. "2: 40; 3: 3"; "0" when none."""
    later = [f"{a}: {n:,}" for a, n in failures.done_by_attempt.items() if a > 1 and n]
    return "; ".join(later) or "0"


def lost_text(failures: AsyncFailures) -> str:
    if failures.lost is None:
        return NA
    if failures.under_way:
        return f"{failures.lost:,} ({failures.under_way:,} still waiting for a retry)"
    return f"{failures.lost:,}"


def retries_text(failures: AsyncFailures) -> str:
    per_task = failures.retries_per_task
    if failures.retries is None:
        return NA
    return f"{per_task:.3f} ({failures.retries:,})" if per_task is not None else f"n/a ({failures.retries:,})"


def peaks_text(queues: dict[str, DelayQueue]) -> str:
    if not queues:
        return NA
    return "; ".join(
        f"{q.delay_ms if q.delay_ms is not None else q.name} ms: {_n(q.peak)}" for q in queues.values()
    )


def _shown(step: LoadedStep, settings: dict[str, str], failures: AsyncFailures | None) -> bool:
    if fails_by_setting(settings) or step.delay_queues:
        return True
    return failures is not None and bool(failures.retries or failures.dead_lettered or failures.under_way)


def async_tables(run: Run) -> list[Table]:
    rows, latency_rows, queue_rows = [], [], []
    for step in run.steps:
        if step.mode != "async":
            continue
        settings = failure_settings(step, run)
        failures = async_failures(run.path, step, compute_metrics(step).accepted)
        if not _shown(step, settings, failures):
            continue
        name = _step_name(step)
        queue_rows += [delay_queue_row(name, q) for q in step.delay_queues.values()]
        if failures is None:
            rows.append([name, settings_text(settings), "nothing recorded", *([NA] * 7)])
            continue
        rows.append(
            [
                name,
                settings_text(settings),
                failures.source,
                _n(failures.accepted),
                fmt_int(failures.done_by_attempt.get(1, 0)),
                done_after_text(failures),
                dead_text(failures),
                lost_text(failures),
                retries_text(failures),
                peaks_text(step.delay_queues),
            ]
        )
        for attempts, lat in failures.latency.items():
            latency_rows.append(
                [
                    name,
                    str(attempts),
                    _n(lat["count"]),
                    *(fmt_ms(lat[k]) for k in ("p50", "p95", "p99", "max")),
                ]
            )
    tables = []
    if rows:
        tables.append(
            Table(
                "Failures and retries (async, by task id)",
                [
                    "step",
                    "failure settings",
                    "from",
                    "accepted (202)",
                    "done on attempt 1",
                    "done after N attempts (N: tasks)",
                    "dead-lettered (reason, tasks, attempts)",
                    "lost",
                    "retries per task (retries)",
                    "delay queues' peak",
                ],
                rows,
                right_from=3,
                notes=[
                    "From the core's outcome records (ledger), each task counted once: done on its first "
                    "attempt, done after N attempts, dead-lettered by the reason of its last attempt "
                    "(permanent: can never succeed; exhausted: failed transiently on its last attempt; "
                    "retry_overflow: the delay queue was full; poison, bad_payload, panic: not a task the "
                    "core could work; failed: before retries). Lost: accepted, never done or dead-lettered "
                    "beyond what was still queued, including tasks still waiting for a retry when the step "
                    "ended. Retries per task: failed attempts sent to a delay queue / accepted. 'core "
                    "/stats': no outcome records for the step, the core's counters instead (attempts of "
                    "dead letters and latency by attempt unknown)."
                ],
            )
        )
    if latency_rows:
        tables.append(
            Table(
                "Completion latency by attempts (async, enqueued to done, ms)",
                ["step", "attempts", "tasks", "p50", "p95", "p99", "max"],
                latency_rows,
                right_from=1,
                notes=[
                    "Each done task once (its first done record), by the attempt it was done on: from "
                    "the gateway's enqueue to the core's record of the attempt that worked, backoff "
                    "included."
                ],
            )
        )
    if queue_rows:
        tables.append(delay_queue_table(queue_rows))
    return tables


def delay_queue_row(step_name: str, queue: DelayQueue) -> list[str]:
    depths = per_second(queue)
    shown = " ".join("?" if d is None else f"{d:g}" for d in depths[:PER_SECOND_SHOWN])
    if len(depths) > PER_SECOND_SHOWN:
        shown += f" … (+{len(depths) - PER_SECOND_SHOWN} s, in the timeline)"
    peak = _n(queue.peak)
    if queue.peak_at_s is not None:
        peak += f" at {queue.peak_at_s:.0f} s"
    if queue.reached_max_length:
        peak += " (FULL: x-max-length reached)"
    return [step_name, queue.name, _n(queue.delay_ms), _n(queue.max_length), peak, shown or NA]


def delay_queue_table(rows: list[list[str]]) -> Table:
    return Table(
        "Delay queues (async retries waiting for their backoff)",
        ["step", "queue", "delay ms", "max length", "peak", "depth each second since the step's start"],
        rows,
        right_from=2,
        notes=[
            "Messages in each delay queue, sampled as the task queue is. A full queue refuses the "
            "retry (x-overflow reject-publish): the core dead-letters that task, reason retry_overflow."
        ],
    )


# --------------------------------------------------------------------------------------------
# sync


def _statuses(failures: SyncFailures) -> str:
    """e.g. "4 (502: 3, 504: 1; the core failed 3: transient 2, permanent 1)"."""
    core = ""
    if failures.core_failed:
        kinds = ", ".join(f"{kind} {n:,}" for kind, n in failures.core_failed.items())
        core = f"the core failed {sum(failures.core_failed.values()):,}: {kinds}"
    if failures.server_errors is None:
        return NA if not core else f"{NA} ({core})"
    detail = "; ".join(
        p for p in (", ".join(f"{s}: {n:,}" for s, n in failures.by_status.items()), core) if p
    )
    return f"{failures.server_errors:,}" + (f" ({detail})" if detail else "")


def _share(part: int | None, whole: int | None) -> str:
    return NA if part is None or not whole else f"{part / whole * 100:.1f}%"


def sync_row(name: str, settings: dict[str, str], f: SyncFailures) -> list[str]:
    retried = f.retries is not None
    final = f.final_ms
    return [
        name,
        settings_text(settings),
        _n(f.requests),
        _statuses(f),
        _n(f.no_answer),
        f"{_n(f.to_retry)} ({_share(f.to_retry, f.requests)})",
        _n(f.retries) if retried else "no (k6 did not retry)",
        f"{_n(f.gave_up)} of {_n(f.iterations)}" if retried else NA,
        f"{f.attempts_avg:.2f} / {f.attempts_max:g}" if retried and f.attempts_avg is not None else NA,
        " / ".join(fmt_ms(final.get(k)) for k in ("med", "p(95)", "max")) if retried and final else NA,
    ]


def sync_table(run: Run) -> Table | None:
    rows = []
    for step in run.steps:
        if step.mode != "sync":
            continue
        settings = failure_settings(step, run)
        failures = sync_failures(run.path, step)
        if fails_by_setting(settings) or failures.to_retry or failures.retries is not None:
            rows.append(sync_row(_step_name(step), settings, failures))
    if not rows:
        return None
    return Table(
        "Failures on the sync path (what the client sees)",
        [
            "step",
            "failure settings",
            "requests",
            "5xx answers",
            "no answer",
            "to retry (share)",
            "k6 retries",
            "gave up (of iterations)",
            "attempts avg / max",
            "user's latency p50 / p95 / max (ms)",
        ],
        rows,
        right_from=2,
        notes=[
            "Every request k6 sent, retries included, from the per-request samples (else k6's "
            "offload_sync_5xx). 5xx: the gateway's 502 for a task the core failed (its error in the "
            "body; 'the core failed': its own count, /stats work_failed), and any other 5xx; no "
            "answer: a timeout or a lost connection. Both are what a "
            "client would have to retry. With k6's own retries (SYNC_RETRIES): the retries sent, the "
            "iterations whose last attempt still failed, and the user's latency from the first attempt "
            "to the last answer, backoff included."
        ],
    )


def failures_tables(run: Run) -> list[Table]:
    """The failures section: async by task id, completion latency by attempts, the delay
    queues, and the sync path; [] when no step ran with failures or saw any."""
    tables = async_tables(run)
    sync = sync_table(run)
    return [*tables, sync] if sync is not None else tables
