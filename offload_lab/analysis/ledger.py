"""The ledger of one step, by task id: what the clients were told 202 for (the `task_id` column
of the step's samples), against what the core recorded as done or dead-lettered in the broker's
`tasks.done` queue (kept as `outcomes/<step>.jsonl.gz`; docs/result-format.md, "Ledger"), and
what sits in the dead-letter queue `tasks.dead` without a record: a quorum queue dead-letters a
task past its x-delivery-limit itself (x-death reason `delivery_limit`), and the core never
sees it again (kept as `dead_letters/<step>.jsonl.gz`).

A task may have several records: one `retried` per failed attempt that went to a delay queue
(not terminal: the task is under way), then one `done` or `dead_lettered` (terminal). Each
record names its `attempt` (1, 2, ...; records written before retries existed have none: 1).

- lost: accepted, and neither done, dead-lettered (by the core or the broker) nor still queued;
  a task with only `retried` records (still waiting for an attempt when the step ended) counts
  as lost too, beyond what is still queued;
- duplicated: done (or dead-lettered) more than once, e.g. redelivered after a core died
  between its work and its ack;
- done but not accepted: the core did it, the client was not told 202 (a timeout, an error, a
  confirm that came too late for the client).
"""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .load import LoadedStep

TERMINAL = ("done", "dead_lettered")
RETRIED = "retried"  # a failed attempt sent to a delay queue: the task goes on
OUTCOMES = (*TERMINAL, RETRIED)
EXAMPLES = 5  # ids listed per category, so a reader can grep for them
ACCEPTED_STATUS = 202


@dataclass(frozen=True)
class Request:
    start_s: float  # unix s
    end_s: float
    status: int  # 0: no response (timeout, connection error)
    task_id: str


def read_requests(samples_path: str | Path) -> list[Request]:
    """The http_req_duration rows of a samples file; task_id "" where the row has none (sync)."""
    out = []
    with gzip.open(samples_path, "rt", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            task_id = row.get("task_id") or ""
            if row.get("metric_name") != "http_req_duration":
                continue
            try:
                end = int(row["timestamp"]) / 1000.0
                start = end - float(row["metric_value"]) / 1000.0
                status = int(row["status"] or 0)
            except (KeyError, ValueError):
                continue
            out.append(Request(start, end, status, task_id))
    return out


def accepted_ids(requests: Iterable[Request]) -> set[str]:
    return {r.task_id for r in requests if r.status == ACCEPTED_STATUS and r.task_id}


def read_outcomes(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """(readable outcome records, count of unreadable ones) of an outcomes .jsonl.gz file."""
    records, bad = [], 0
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            record = parse_outcome(line)
            if record is None:
                bad += 1
            else:
                records.append(record)
    return records, bad


def write_outcomes(path: str | Path, bodies: Iterable[str]) -> int:
    """Keep the records as the broker gave them, one per line; returns how many."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for body in bodies:
            fh.write(body.replace("\n", " ") + "\n")
            n += 1
    return n


def parse_outcome(body: str | bytes) -> dict[str, Any] | None:
    """One outcome record (JSON with at least `task_id` and `outcome`), None if unreadable."""
    try:
        record = json.loads(body)
    except (ValueError, TypeError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("task_id"), str):
        return None
    if record.get("outcome") not in OUTCOMES:
        return None
    return record


def attempt_of(record: dict[str, Any]) -> int:
    """The record's attempt: 1 when it has none (before retries) or a value that is no count."""
    attempt = record.get("attempt")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        return 1
    return attempt


def settled_ids(records: Iterable[dict[str, Any]]) -> set[str]:
    """The ids with a terminal record (done or dead-lettered): a task with only `retried`
    records is still under way."""
    return {r["task_id"] for r in records if r.get("outcome") in TERMINAL}


def by_attempt(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the records say attempt by attempt, each task counted once by its first terminal
    record: `done_by_attempt` {attempt: tasks}, `dead_lettered_by_reason` {reason: {attempt:
    tasks}} (a record without a reason: `unknown`), `retries` (distinct (task, attempt) retried
    records: the retries the broker held), `retried_tasks`, `attempts` {attempts a task took:
    tasks} over the settled ones, `under_way` (retried, never settled)."""
    first: dict[str, dict[str, Any]] = {}
    retried: set[tuple[str, int]] = set()
    for r in records:
        if r["outcome"] == RETRIED:
            retried.add((r["task_id"], attempt_of(r)))
        else:
            first.setdefault(r["task_id"], r)
    done: Counter[int] = Counter()
    dead: dict[str, Counter[int]] = {}
    for r in first.values():
        if r["outcome"] == "done":
            done[attempt_of(r)] += 1
        else:
            dead.setdefault(str(r.get("reason") or "unknown"), Counter())[attempt_of(r)] += 1
    retried_tasks = {task_id for task_id, _ in retried}
    return {
        "done_by_attempt": _keyed(done),
        "dead_lettered_by_reason": {reason: _keyed(n) for reason, n in sorted(dead.items())},
        "retries": len(retried),
        "retried_tasks": len(retried_tasks),
        "attempts": _keyed(Counter(attempt_of(r) for r in first.values())),
        "under_way": len(retried_tasks - set(first)),
    }


def _keyed(counts: Counter[int]) -> dict[str, int]:
    """{"1": n, "2": n, ...} by attempt, as JSON keeps it."""
    return {str(k): counts[k] for k in sorted(counts)}


def parse_dead_letter(message: dict[str, Any]) -> dict[str, Any] | None:
    """One message of the dead-letter queue, as the management API's get gives it, as
    {task_id, reason, queue}: the id is the message_id (every publisher sets it to the task id),
    else Celery's `id` header, else the body's `id`; the reason and queue of its first death
    (x-death). None when it has no id."""
    properties = message.get("properties") or {}
    headers = properties.get("headers") or {}
    task_id = properties.get("message_id") or headers.get("id")
    if not task_id:
        try:
            task_id = json.loads(message.get("payload") or "").get("id")
        except (ValueError, TypeError, AttributeError):
            task_id = None
    if not isinstance(task_id, str) or not task_id:
        return None
    deaths = headers.get("x-death") or [{}]
    first = deaths[-1] if isinstance(deaths, list) and isinstance(deaths[-1], dict) else {}
    return {
        "task_id": task_id,
        "reason": headers.get("x-first-death-reason") or first.get("reason") or "unknown",
        "queue": headers.get("x-first-death-queue") or first.get("queue"),
    }


def write_dead_letters(path: str | Path, entries: Iterable[dict[str, Any]]) -> int:
    return write_outcomes(path, (json.dumps(e, sort_keys=True) for e in entries))


def read_dead_letters(path: str | Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def build_ledger(
    accepted: Iterable[str] | None,
    outcomes: list[dict[str, Any]],
    still_queued: int | None,
    unreadable: int = 0,
    dead_letters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The step's ledger. `accepted` None means the client's ids are not known (no samples):
    then only duplicates and totals can be said. `dead_letters`: the dead-letter queue's
    messages (parse_dead_letter); None when it was not looked at (the broker's own
    dead-lettering then cannot be told from a loss)."""
    terminal = [o for o in outcomes if o["outcome"] in TERMINAL]
    counts = Counter(o["task_id"] for o in terminal)
    retried_records = Counter((o["task_id"], attempt_of(o)) for o in outcomes if o["outcome"] == RETRIED)
    by_outcome = {name: {o["task_id"] for o in terminal if o["outcome"] == name} for name in TERMINAL}
    recorded = set(counts)  # settled: a terminal record
    duplicated = sorted(i for i, n in counts.items() if n > 1)
    attempts = by_attempt(outcomes)
    ledger: dict[str, Any] = {
        "outcome_records": len(outcomes),
        "unreadable_records": unreadable,
        "done": len(by_outcome["done"]),
        "dead_lettered": len(by_outcome["dead_lettered"]),
        "retried_records": sum(retried_records.values()),
        "retried_tasks": attempts["retried_tasks"],
        "under_way": attempts["under_way"],
        "done_by_attempt": attempts["done_by_attempt"],
        "dead_lettered_by_reason": attempts["dead_lettered_by_reason"],
        "duplicated": len(duplicated),
        # a terminal record beyond a task's first, or a retried one beyond its attempt's first
        "duplicate_records": sum(n - 1 for n in [*counts.values(), *retried_records.values()] if n > 1),
        "redelivered_records": sum(1 for o in outcomes if o.get("redelivered")),
        "still_queued": still_queued,
        "examples": {"duplicated": duplicated[:EXAMPLES]},
    }
    if accepted is None:
        ledger.update(accepted=None, lost=None, done_not_accepted=None, dead_lettered_by_broker=None)
        return ledger
    accepted_ids = set(accepted)
    # the dead-letter queue keeps earlier steps' tasks too: only this step's accepted ids count
    by_broker = {d["task_id"]: d["reason"] for d in dead_letters or [] if d["task_id"] in accepted_ids}
    for task_id in recorded:
        by_broker.pop(task_id, None)  # the core recorded it (its own dead-lettering: rejected)
    missing = sorted(accepted_ids - recorded - set(by_broker))
    not_accepted = sorted(recorded - accepted_ids)
    retried_ids = {task_id for task_id, _ in retried_records}
    under_way = sorted(retried_ids - recorded - set(by_broker))
    ledger["under_way"] = len(under_way)
    queued = still_queued or 0
    # ids still in the queue are not known one by one: only what exceeds the queue is lost
    lost = max(0, len(missing) - queued)
    ledger.update(
        accepted=len(accepted_ids),
        lost=lost,
        unaccounted=len(missing),
        done_not_accepted=len(not_accepted),
        dead_lettered_by_broker=None if dead_letters is None else len(by_broker),
        dead_lettered_by_broker_reasons=dict(sorted(Counter(by_broker.values()).items())),
    )
    ledger["examples"].update(
        lost=missing[:EXAMPLES] if lost else [],
        done_not_accepted=not_accepted[:EXAMPLES],
        dead_lettered_by_broker=sorted(by_broker)[:EXAMPLES],
        under_way=under_way[:EXAMPLES],
    )
    return ledger


def fault_effects(
    requests: list[Request],
    faults: list[dict[str, Any]],
    load_end_s: float,
    expected_status: int = ACCEPTED_STATUS,
) -> list[dict[str, Any]]:
    """What each fault did to the clients, from the step's per-request samples: the 503s and
    other errors among requests started in its window (its start until the next fault or the
    end of load), and recovery: from the fault to the first expected answer (202 async, 200
    sync) after the last failure in that window (0 when nothing failed)."""
    out = []
    starts = [f.get("started_unix_s") for f in faults]
    for i, fault in enumerate(faults):
        t0 = starts[i]
        if t0 is None:
            out.append({**fault, "errors": None, "rejected_503": None, "recovery_s": None})
            continue
        t1 = next((t for t in starts[i + 1 :] if t is not None), load_end_s)
        window = [r for r in requests if t0 <= r.start_s < t1]
        failed = [r for r in window if r.status != expected_status]
        recovery = 0.0
        if failed:
            last_fail = max(r.start_s for r in failed)
            after = [r.end_s for r in requests if r.status == expected_status and r.start_s > last_fail]
            recovery = round(min(after) - t0, 3) if after else None
        out.append(
            {
                **fault,
                "requests": len(window),
                "rejected_503": sum(1 for r in failed if r.status == 503),
                "errors": len(failed),
                "first_error_s": round(min(r.start_s for r in failed) - t0, 3) if failed else None,
                "recovery_s": recovery,
            }
        )
    return out


def step_ledger(run_dir: Path, step: LoadedStep) -> dict[str, Any] | None:
    """The step's ledger from its raw files, or as the step JSON recorded it."""
    rebuilt = rebuild_ledger(run_dir, step)
    return step.ledger if rebuilt is None else rebuilt[0]


def rebuild_ledger(run_dir: Path, step: LoadedStep) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """(the ledger, the outcome records) from the step's raw files; None when it has none."""
    recorded = step.ledger
    if not isinstance(recorded, dict) or "error" in recorded:
        return None
    outcomes = run_dir / str(recorded.get("file") or "")
    if not recorded.get("file") or not outcomes.is_file():
        return None
    records, unreadable = read_outcomes(outcomes)
    samples = run_dir / step.samples_file if step.samples_file else None
    accepted = accepted_ids(read_requests(samples)) if samples and samples.is_file() else None
    dead_file = run_dir / str(recorded.get("dead_letters_file") or "")
    dead = read_dead_letters(dead_file) if recorded.get("dead_letters_file") and dead_file.is_file() else None
    return build_ledger(accepted, records, recorded.get("still_queued"), unreadable, dead), records
