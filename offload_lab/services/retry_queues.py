"""The delay queues of the core's retries, as a step sees them: their names, whether the step
samples their depth, and what its step file records of them (`broker.retry_queues`,
docs/result-format.md).

The core declares one delay queue per backoff step, `<task queue>.retry.<ms>` (per-queue TTL
<ms>, dead-lettered back to the task exchange; x-max-length RETRY_QUEUE_MAX_LENGTH with
x-overflow reject-publish), bound to the exchange `<task queue>.retry` (docs/interfaces.md). A
task waiting there for its next attempt is neither in the task queue nor at the core: a step is
drained only once these are empty too, and the step before one must leave them empty."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..plan.core_spec import fail_rate, retry_delays_ms, retry_queue_max_length


def retry_exchange(task_queue: str) -> str:
    return f"{task_queue}.retry"


def delay_queue(task_queue: str, delay_ms: int) -> str:
    return f"{task_queue}.retry.{delay_ms}"


def is_delay_queue(name: str, task_queue: str) -> bool:
    return re.fullmatch(re.escape(f"{task_queue}.retry.") + r"[0-9]+", name) is not None


def waiting_retries(depths: dict[str, int | None], task_queue: str) -> int:
    """Messages in every delay queue of `task_queue` in a listing of the vhost's queues (also
    those of delays no longer configured: what they hold still comes back)."""
    return sum(n or 0 for name, n in depths.items() if is_delay_queue(name, task_queue))


@dataclass(frozen=True)
class RetryQueues:
    """The delay queues a step's core publishes its retries to."""

    task_queue: str
    delays_ms: tuple[int, ...]
    max_length: int

    @classmethod
    def of(cls, core: dict[str, str], task_queue: str) -> RetryQueues | None:
        """From a core's effective settings (plan.core_spec.effective_core); None: no retry."""
        delays = retry_delays_ms(core)
        return cls(task_queue, tuple(delays), retry_queue_max_length(core)) if delays else None

    @property
    def names(self) -> list[str]:
        return [delay_queue(self.task_queue, ms) for ms in self.delays_ms]

    def depths(self, listing: dict[str, int | None]) -> dict[str, int | None]:
        """These queues' depths from a listing of the vhost's queues (None: not declared)."""
        return {name: listing.get(name) for name in self.names}

    def report(self, samples: list[list[Any]], sample_errors: int) -> dict[str, Any]:
        """What a step file records: `samples` are [s since t0, {queue: messages} or None]."""
        peaks: dict[str, int | None] = {}
        for name in self.names:
            seen = [s[1][name] for s in samples if s[1] is not None and s[1].get(name) is not None]
            peaks[name] = max(seen) if seen else None
        totals = [sum(n or 0 for n in s[1].values()) for s in samples if s[1] is not None]
        return {
            "exchange": retry_exchange(self.task_queue),
            "delays_ms": list(self.delays_ms),
            "queues": self.names,
            "max_length": self.max_length,
            "samples": samples,
            "peak": peaks,
            "peak_total": max(totals) if totals else None,
            # a full delay queue refuses the retry (x-overflow reject-publish): the core then
            # dead-letters the task with reason retry_overflow
            "full": [name for name, peak in peaks.items() if peak is not None and peak >= self.max_length],
            "sample_errors": sample_errors,
        }


def samples_retries(mode: str, core: dict[str, str]) -> bool:
    """Whether a step samples the delay queues' depth: an async step whose core retries
    (RETRY_DELAYS_MS not empty) and fails transiently (TRANSIENT_FAIL_RATE > 0), the only
    steps that put anything in them; every other step would read zeros, a management API
    request a second for nothing. The sync path never touches the queues."""
    return mode == "async" and bool(retry_delays_ms(core)) and fail_rate(core, "TRANSIENT_FAIL_RATE") > 0
