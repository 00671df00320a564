"""Per step, around the load: the precondition (an empty task queue and an idle core) and the
ledger (the core's outcome records in `tasks.done`, taken after the drain, and the tasks the
broker itself dead-lettered into `tasks.dead`, looked at without removing them; both kept in
the run folder and checked against the ids the client was told 202 for; offload_lab/analysis/ledger.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..analysis.ledger import (
    RETRIED,
    accepted_ids,
    build_ledger,
    fault_effects,
    parse_dead_letter,
    parse_outcome,
    read_outcomes,
    read_requests,
    settled_ids,
    write_dead_letters,
    write_outcomes,
)
from .broker import QueueDepth, depth_total


class StepRefused(RuntimeError):
    """A step cannot start from a clean state; its message says what is left and how to clear it."""


class OutcomeQueue(Protocol):
    def purge(self) -> None: ...
    def take(self) -> list[str]: ...
    def dead_letters(self) -> list[dict[str, Any]]: ...


def wait_until_empty(
    depth: Callable[[], QueueDepth | int],
    idle: Callable[[], bool],
    timeout_s: float,
    queue: str,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until the task queue is empty and the core has nothing in flight; returns the wait.
    Raises StepRefused after `timeout_s`: measuring on top of an earlier step's backlog would
    mix the two steps' numbers."""
    t0 = clock()
    while True:
        n = depth_total(depth())
        busy = not idle()
        if n == 0 and not busy:
            return round(clock() - t0, 3)
        if clock() - t0 >= timeout_s:
            state = f"{n} message(s) in {queue!r}" + (", the core still working" if busy else "")
            raise StepRefused(
                f"the step cannot start from an empty queue: after {timeout_s:g} s there are still "
                f"{state}. Let it drain (watch the broker's management UI) or purge it, then run again"
            )
        sleep(1.0)


SETTLE_S = 5.0  # records still missing: how long to keep taking after the last new one came


def collect_ledger(
    queue: OutcomeQueue,
    folder: Path,
    stem: str,
    samples_file: str | None,
    still_queued: int | None,
    max_wait_s: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Take the step's outcome records into `outcomes/<stem>.jsonl.gz` and, for accepted ids
    without one, look at the dead-letter queue (`dead_letters/<stem>.jsonl.gz`: its messages
    for this step's accepted ids); returns the ledger.

    While accepted ids are accounted for by neither, keep looking: once a second, until none is
    missing, or nothing new came for SETTLE_S, or `max_wait_s` passed. The queue-depth
    statistics that end the drain wait can be stale (right after a broker restart they read 0
    while a consumer is only reconnecting); the records themselves are the ground truth, and
    they are still on their way then. An id whose last record is `retried` waits in a delay
    queue: its next attempt is due `delay_ms` after that record, and the wait lasts until
    SETTLE_S past the last such due time (within `max_wait_s`)."""
    rel, dead_rel = f"outcomes/{stem}.jsonl.gz", f"dead_letters/{stem}.jsonl.gz"
    requests = read_requests(folder / samples_file) if samples_file else None
    accepted = accepted_ids(requests) if requests is not None else None
    bodies = queue.take()
    # the dead-letter queue is looked at only while ids are missing and no records are coming
    # (a look costs about 2 ms a message in it)
    dead: list[dict[str, Any]] | None = [] if accepted is not None else None
    dead_error = None
    records_came = False
    t0 = last_new = clock()
    waited = 0.0
    while accepted is not None:
        taken = [r for r in map(parse_outcome, bodies) if r is not None]
        recorded = settled_ids(taken)  # done or dead-lettered: `retried` goes on
        missing = accepted - recorded - {d["task_id"] for d in dead or []}
        if missing and not records_came:
            seen, dead_error = look_at_dead_letters(queue)
            if seen is not None and len(seen) > len(dead or []):
                last_new = clock()
            dead = seen
            missing -= {d["task_id"] for d in dead or []}
        retry_due = retries_due_unix_s(taken, missing)
        settled = clock() - last_new >= SETTLE_S and (retry_due is None or wall() >= retry_due + SETTLE_S)
        if not missing or settled or clock() - t0 >= max_wait_s:
            break
        sleep(1.0)
        more = queue.take()
        records_came = bool(more)
        if more:
            bodies += more
            last_new = clock()
        waited = round(clock() - t0, 3)
    count = write_outcomes(folder / rel, bodies)
    records, unreadable = read_outcomes(folder / rel)
    if dead is not None:
        dead = [d for d in dead if d["task_id"] in accepted]
        write_dead_letters(folder / dead_rel, dead)
    ledger = build_ledger(accepted, records, still_queued, unreadable, dead)
    ledger.update(file=rel, records_taken=count, waited_for_records_s=waited)
    ledger.update(dead_letters_file=dead_rel if dead is not None else None)
    if dead_error:
        ledger["dead_letters_error"] = dead_error
    return ledger


def retries_due_unix_s(records: list[dict[str, Any]], ids: set[str]) -> float | None:
    """When the last of these ids' next attempts is due (Unix s, the core's clock): the latest
    `retried` record's time plus its delay; None when none of them is waiting for a retry."""
    due = []
    for r in records:
        if r.get("outcome") == RETRIED and r["task_id"] in ids:
            try:
                due.append(int(r.get("completed_at_ns") or 0) / 1e9 + int(r.get("delay_ms") or 0) / 1000)
            except (TypeError, ValueError):
                continue
    return max(due) if due else None


def look_at_dead_letters(queue: OutcomeQueue) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The dead-letter queue's messages (offload_lab.analysis.ledger.parse_dead_letter; those without an id
    left out), or None and why not: a step whose dead letters cannot be seen still has a ledger,
    in which a task the broker dead-lettered shows as lost."""
    try:
        messages = queue.dead_letters()
    except Exception as exc:
        return None, f"dead-letter queue not looked at: {exc}"
    return [d for d in map(parse_dead_letter, messages) if d is not None], None


def with_effects(
    faults: list[dict[str, Any]], folder: Path, samples_file: str | None, load_end_unix_s: float, mode: str
) -> list[dict[str, Any]]:
    """The faults performed in a step, each with what it did to the clients (its samples)."""
    if not faults or not samples_file:
        return faults
    expected = 200 if mode == "sync" else 202
    return fault_effects(read_requests(folder / samples_file), faults, load_end_unix_s, expected)
