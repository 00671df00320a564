"""What failures cost each path, per step (issue 22), from the run folder's raw files.

- async: from the ledger (outcome records with `attempt`, offload_lab/analysis/ledger.py): tasks done on
  the first attempt, done after N attempts, dead-lettered by reason and attempts, lost, the
  retries the delay queues held, and completion latency (enqueued -> done) by the attempts a
  task took. A step without outcome records falls back on the core's /stats (`retried`,
  `done_by_attempt`, `dead_lettered_by_reason`), which know no attempts of dead letters and no
  latency by attempt.
- sync: the answers a client would have had to retry: 5xx (the gateway's 502 for a task the
  core failed, and any other 5xx) and requests without an answer, from the per-request samples
  (else the k6 summary's `offload_sync_5xx`); with k6's own retries (k6/loadtest.js
  SYNC_RETRIES), what the user finally got: retries sent, gave up, the latency from the first
  attempt to the last answer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .ledger import TERMINAL, attempt_of, rebuild_ledger
from .load import LoadedStep, Run, _num
from .samples import SamplesError, percentile, read_samples

# the core's failure settings (docs/interfaces.md); FAIL_RATE: runs before retries existed
FAILURE_SETTINGS = ("TRANSIENT_FAIL_RATE", "PERMANENT_FAIL_RATE", "FAIL_RATE")
UNKNOWN_ATTEMPT = 0  # a dead letter counted by the core's /stats: its attempts are not known


@dataclass
class AsyncFailures:
    source: str  # "ledger" (outcome records) | "core /stats"
    accepted: int | None = None
    done_by_attempt: dict[int, int] = field(default_factory=dict)
    dead_by_reason: dict[str, dict[int, int]] = field(default_factory=dict)  # reason -> attempt -> tasks
    lost: int | None = None
    under_way: int | None = None  # retried, never settled (ledger only)
    retries: int | None = None  # failed attempts sent to a delay queue
    # attempts a task took -> {count, p50, p95, p99, max} of its completion latency (ms)
    latency: dict[int, dict[str, float | int | None]] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(self.done_by_attempt.values())

    @property
    def dead_lettered(self) -> int:
        return sum(sum(by.values()) for by in self.dead_by_reason.values())

    @property
    def retries_per_task(self) -> float | None:
        if self.retries is None or not self.accepted:
            return None
        return self.retries / self.accepted


@dataclass
class SyncFailures:
    requests: int | None = None
    server_errors: int | None = None  # 5xx answers (every attempt)
    by_status: dict[int, int] = field(default_factory=dict)  # the 5xx statuses (samples only)
    no_answer: int | None = None  # status 0: a timeout, a lost connection (samples only)
    source: str | None = None  # "samples" | "k6 summary"
    retries: int | None = None  # k6's own retries (SYNC_RETRIES); None: k6 did not retry
    iterations: int | None = None
    gave_up: int | None = None  # iterations whose last attempt failed too
    attempts_avg: float | None = None
    attempts_max: float | None = None
    final_ms: dict[str, float | None] = field(default_factory=dict)  # avg, med, p(95), p(99), max
    core_failed: dict[str, int] = field(default_factory=dict)  # the core's /stats work_failed, by kind

    @property
    def to_retry(self) -> int | None:
        """Answers a client would have had to retry: 5xx and none at all."""
        if self.server_errors is None:
            return None
        return self.server_errors + (self.no_answer or 0)


def failure_settings(step: LoadedStep, run: Run | None = None) -> dict[str, str]:
    """The core's failure and retry settings for the step: its own (step.core), else the run's."""
    settings = step.core_settings
    if not any(k in settings for k in FAILURE_SETTINGS) and run is not None:
        settings = run.meta.settings.get("core") or {}
    keys = (*FAILURE_SETTINGS, "RETRY_DELAYS_MS", "RETRY_QUEUE_MAX_LENGTH")
    if not isinstance(settings, dict):
        return {}
    return {k: _setting_text(settings[k]) for k in keys if k in settings}


def _setting_text(value: Any) -> str:
    """A setting as the core's environment has it: a list (a spec's RETRY_DELAYS_MS) comma-joined."""
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def fails_by_setting(settings: dict[str, str]) -> bool:
    rates = [_float(settings.get(k)) for k in FAILURE_SETTINGS]
    return any(r is not None and r > 0 for r in rates)


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# async


def latency_by_attempts(records: list[dict[str, Any]]) -> dict[int, dict[str, float | int | None]]:
    """Completion latency (completed_at_ns - enqueued_at_ns, ms) of each task's first `done`
    record, grouped by the attempt it was done on; records without both times are left out."""
    first: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("outcome") in TERMINAL:
            first.setdefault(r["task_id"], r)
    groups: dict[int, list[float]] = {}
    for r in first.values():
        done_ns, enqueued_ns = _num(r.get("completed_at_ns")), _num(r.get("enqueued_at_ns"))
        if r["outcome"] == "done" and done_ns and enqueued_ns:
            groups.setdefault(attempt_of(r), []).append((done_ns - enqueued_ns) / 1e6)
    out = {}
    for attempt in sorted(groups):
        values = groups[attempt]
        out[attempt] = {
            "count": len(values),
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "p99": percentile(values, 99),
            "max": max(values),
        }
    return out


def _int_keys(counts: Any) -> dict[int, int]:
    """{"1": n, ...} (JSON's keys) as {1: n, ...}; entries that are no counts left out."""
    if not isinstance(counts, dict):
        return {}
    out = {}
    for key, n in counts.items():
        try:
            attempt = int(key)
        except (TypeError, ValueError):
            continue
        if _num(n) is not None:
            out[attempt] = int(n)
    return dict(sorted(out.items()))


def async_failures(run_dir: Path, step: LoadedStep, accepted: int | None = None) -> AsyncFailures | None:
    """The step's failures from its ledger, else from the core's /stats; None when neither
    says anything (an old step without records or those counters). `accepted`: the clients'
    202s (offload_lab.analysis.metrics), for the /stats fallback."""
    rebuilt = rebuild_ledger(run_dir, step)
    if rebuilt is not None:
        ledger, records = rebuilt
        return AsyncFailures(
            source="ledger",
            accepted=ledger.get("accepted"),
            done_by_attempt=_int_keys(ledger.get("done_by_attempt")),
            dead_by_reason={
                r: _int_keys(n) for r, n in (ledger.get("dead_lettered_by_reason") or {}).items()
            },
            lost=ledger.get("lost"),
            under_way=ledger.get("under_way"),
            retries=len({(r["task_id"], attempt_of(r)) for r in records if r["outcome"] == "retried"}),
            latency=latency_by_attempts(records),
        )
    return stats_failures(step.core or {}, accepted)


def stats_failures(core: dict[str, Any], accepted: int | None) -> AsyncFailures | None:
    """From the core's /stats: `done_by_attempt`, `dead_lettered_by_reason` and `retried`; a
    core from before retries (none of them) did every task on its first attempt, and its
    `dead_lettered` has no reason. None when the stats have no counts at all."""
    if "retried" in core or "done_by_attempt" in core:
        source = "core /stats"
        done = _int_keys(core.get("done_by_attempt"))
        reasons = core.get("dead_lettered_by_reason")
        dead = {
            str(reason): {UNKNOWN_ATTEMPT: int(n)}
            for reason, n in (reasons.items() if isinstance(reasons, dict) else [])
            if _num(n)
        }
        retried = _num(core.get("retried"))
    elif _num(core.get("completed")) is not None:
        source = "core /stats (no retries)"
        done = {1: int(core["completed"])}
        dead = (
            {"unknown": {UNKNOWN_ATTEMPT: int(core["dead_lettered"])}}
            if _num(core.get("dead_lettered"))
            else {}
        )
        retried = 0
    else:
        return None
    failures = AsyncFailures(source=source, accepted=accepted, done_by_attempt=done, dead_by_reason=dead)
    failures.retries = None if retried is None else int(retried)
    if accepted is not None:
        failures.lost = accepted - failures.done - failures.dead_lettered
    return failures


# --------------------------------------------------------------------------------------------
# sync


def _metric(step: LoadedStep, name: str, key: str) -> float | None:
    values = step.k6_metric(name)
    return None if values is None else _num(values.get(key))


def sync_failures(run_dir: Path, step: LoadedStep) -> SyncFailures:
    """The step's 5xx and unanswered requests, and what k6's own retries gave the users."""
    out = SyncFailures(requests=_int(_metric(step, "http_reqs", "count")))
    work_failed = (step.core or {}).get("work_failed")
    if isinstance(work_failed, dict):
        out.core_failed = {str(k): int(n) for k, n in sorted(work_failed.items()) if _num(n)}
    samples = None
    if step.samples_file:
        try:
            samples = read_samples(run_dir / step.samples_file)
        except (OSError, SamplesError):
            samples = None
    if samples is not None:
        status = samples.req_status
        out.source, out.requests = "samples", samples.count
        out.by_status = {int(s): int(n) for s, n in sorted(Counter(status[status >= 500].tolist()).items())}
        out.server_errors = int(np.count_nonzero(status >= 500))
        out.no_answer = int(np.count_nonzero(status == 0))
    elif step.k6_metric("offload_sync_5xx") is not None:
        out.source, out.server_errors = "k6 summary", _int(_metric(step, "offload_sync_5xx", "count"))
    if step.k6_metric("offload_sync_retries") is not None:
        out.retries = _int(_metric(step, "offload_sync_retries", "count"))
        out.iterations = _int(_metric(step, "iterations", "count"))
        out.gave_up = _int(_metric(step, "offload_sync_gave_up", "passes"))
        out.attempts_avg = _metric(step, "offload_sync_attempts", "avg")
        out.attempts_max = _metric(step, "offload_sync_attempts", "max")
        final = step.k6_metric("offload_sync_final_ms") or {}
        out.final_ms = {k: _num(final.get(k)) for k in ("avg", "med", "p(95)", "p(99)", "max")}
    return out


def _int(value: float | None) -> int | None:
    return None if value is None else int(round(value))
