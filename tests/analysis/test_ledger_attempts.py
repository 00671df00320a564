"""The ledger with retries (issue 22): `retried` records are not outcomes, each record names its
attempt, dead letters have new reasons, and records from before retries still read."""

from __future__ import annotations

import json

import pytest

from offload_lab.analysis.ledger import attempt_of, build_ledger, by_attempt, parse_outcome, settled_ids


def rec(task_id, outcome="done", attempt=None, reason=None, redelivered=False):
    record = {"task_id": task_id, "outcome": outcome, "redelivered": redelivered}
    if attempt is not None:
        record["attempt"] = attempt
    if reason is not None:
        record["reason"] = reason
    return record


def retried_then(task_id, final, attempts, reason=None):
    """A task's records: attempts - 1 retries, then its final outcome on the last attempt."""
    records = [
        rec(task_id, "retried", a, "transient") | {"delay_ms": 1000 * 4 ** (a - 1)}
        for a in range(1, attempts)
    ]
    return [*records, rec(task_id, final, attempts, reason)]


def test_a_retried_record_is_readable_and_not_an_outcome():
    record = parse_outcome(json.dumps(rec("a", "retried", 1, "transient") | {"delay_ms": 1000}))
    assert record is not None and record["outcome"] == "retried"
    assert settled_ids([record]) == set()
    assert settled_ids([record, rec("a", "done", 2)]) == {"a"}


@pytest.mark.parametrize(
    "attempt, expected", [(None, 1), (1, 1), (3, 3), (0, 1), ("2", 1), (True, 1), (2.0, 1)]
)
def test_a_record_without_a_usable_attempt_is_the_first(attempt, expected):
    assert attempt_of(rec("a", attempt=attempt)) == expected


def test_a_task_that_failed_twice_then_succeeded_is_done_once_after_3_attempts():
    ledger = build_ledger({"a"}, retried_then("a", "done", 3), still_queued=0)
    assert (ledger["done"], ledger["dead_lettered"], ledger["lost"]) == (1, 0, 0)
    assert ledger["duplicated"] == 0 and ledger["duplicate_records"] == 0
    assert ledger["done_by_attempt"] == {"3": 1}
    assert (ledger["retried_tasks"], ledger["retried_records"], ledger["under_way"]) == (1, 2, 0)
    assert ledger["done_not_accepted"] == 0


def test_dead_letters_by_reason_and_attempt():
    records = [
        *retried_then("p", "dead_lettered", 1, "permanent"),
        *retried_then("e", "dead_lettered", 4, "exhausted"),
        *retried_then("o", "dead_lettered", 2, "retry_overflow"),
        *retried_then("o2", "dead_lettered", 2, "retry_overflow"),
        rec("old", "dead_lettered", reason="failed"),  # before retries: no attempt
        rec("x", "dead_lettered"),  # no reason at all
        rec("d"),
    ]
    ledger = build_ledger({"p", "e", "o", "o2", "old", "x", "d"}, records, still_queued=0)
    assert ledger["dead_lettered"] == 6 and ledger["done"] == 1 and ledger["lost"] == 0
    assert ledger["dead_lettered_by_reason"] == {
        "exhausted": {"4": 1},
        "failed": {"1": 1},
        "permanent": {"1": 1},
        "retry_overflow": {"2": 2},
        "unknown": {"1": 1},
    }
    assert ledger["done_by_attempt"] == {"1": 1}
    assert by_attempt(records)["attempts"] == {"1": 4, "2": 2, "4": 1}


def test_a_task_still_waiting_for_a_retry_is_lost_beyond_what_is_queued():
    records = [rec("a", "retried", 1, "transient"), rec("b")]
    ledger = build_ledger({"a", "b"}, records, still_queued=0)
    assert ledger["under_way"] == 1 and ledger["lost"] == 1 and ledger["examples"]["lost"] == ["a"]
    assert ledger["examples"]["under_way"] == ["a"]
    assert build_ledger({"a", "b"}, records, still_queued=1)["lost"] == 0


def test_duplicates_with_retries():
    # a core died after its retry copy was confirmed and before its ack: attempt 1 is retried
    # twice, and both copies end done
    records = [
        rec("a", "retried", 1, "transient"),
        rec("a", "retried", 1, "transient", redelivered=True),
        rec("a", "done", 2),
        rec("a", "done", 2),
    ]
    ledger = build_ledger({"a"}, records, still_queued=0)
    assert ledger["duplicated"] == 1 and ledger["duplicate_records"] == 2
    assert ledger["done_by_attempt"] == {"2": 1} and ledger["retried_records"] == 2
    assert ledger["lost"] == 0 and ledger["under_way"] == 0


def test_a_late_retried_duplicate_does_not_make_a_done_task_under_way():
    records = [rec("a", "done", 1), rec("a", "retried", 1, "transient", redelivered=True)]
    ledger = build_ledger({"a"}, records, still_queued=0)
    assert ledger["under_way"] == 0 and ledger["lost"] == 0 and ledger["done"] == 1


def test_a_retried_task_the_broker_dead_lettered_is_not_under_way():
    dead = [{"task_id": "a", "reason": "delivery_limit"}]
    ledger = build_ledger({"a"}, [rec("a", "retried", 1, "transient")], still_queued=0, dead_letters=dead)
    assert ledger["under_way"] == 0 and ledger["lost"] == 0 and ledger["dead_lettered_by_broker"] == 1


def test_only_settled_tasks_count_as_done_not_accepted():
    ledger = build_ledger({"a"}, [rec("a"), rec("z", "retried", 1, "transient")], still_queued=0)
    assert ledger["done_not_accepted"] == 0


def test_records_from_before_retries_read_as_before():
    records = [rec("a"), rec("b", "dead_lettered", reason="failed"), rec("a", redelivered=True)]
    ledger = build_ledger({"a", "b", "c"}, records, still_queued=0)
    assert (ledger["done"], ledger["dead_lettered"], ledger["lost"], ledger["duplicated"]) == (1, 1, 1, 1)
    assert ledger["done_by_attempt"] == {"1": 1} and ledger["retried_tasks"] == 0
