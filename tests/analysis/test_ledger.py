"""The ledger by task id and what each fault did to the clients (offload_lab/analysis/ledger.py)."""

from __future__ import annotations

import gzip
import json

import pytest

from offload_lab.analysis.ledger import (
    Request,
    accepted_ids,
    build_ledger,
    fault_effects,
    parse_dead_letter,
    parse_outcome,
    read_dead_letters,
    read_outcomes,
    read_requests,
    write_dead_letters,
    write_outcomes,
)


def done(task_id, outcome="done", redelivered=False):
    return {"task_id": task_id, "outcome": outcome, "redelivered": redelivered}


def test_lost_duplicated_and_done_not_accepted_are_told_apart():
    accepted = {"a", "b", "c", "d"}
    outcomes = [done("a"), done("a", redelivered=True), done("b", "dead_lettered"), done("z")]
    ledger = build_ledger(accepted, outcomes, still_queued=0)
    assert ledger["accepted"] == 4
    assert ledger["done"] == 2 and ledger["dead_lettered"] == 1  # a and z done; b dead-lettered
    assert ledger["lost"] == 2 and set(ledger["examples"]["lost"]) == {"c", "d"}
    assert ledger["duplicated"] == 1 and ledger["duplicate_records"] == 1
    assert ledger["examples"]["duplicated"] == ["a"] and ledger["redelivered_records"] == 1
    assert ledger["done_not_accepted"] == 1 and ledger["examples"]["done_not_accepted"] == ["z"]


def test_tasks_still_queued_are_not_lost():
    ledger = build_ledger({"a", "b", "c"}, [done("a")], still_queued=2)
    assert ledger["lost"] == 0 and ledger["unaccounted"] == 2
    ledger = build_ledger({"a", "b", "c"}, [done("a")], still_queued=1)
    assert ledger["lost"] == 1


def test_without_the_clients_ids_only_duplicates_are_known():
    ledger = build_ledger(None, [done("a"), done("a")], still_queued=0)
    assert ledger["lost"] is None and ledger["accepted"] is None and ledger["duplicated"] == 1


@pytest.mark.parametrize(
    "body", ["not json", "[]", '{"outcome": "done"}', '{"task_id": "a", "outcome": "eaten"}']
)
def test_unreadable_records_are_counted_not_used(body, tmp_path):
    assert parse_outcome(body) is None
    path = tmp_path / "o.jsonl.gz"
    assert write_outcomes(path, [json.dumps(done("a")), body]) == 2
    records, bad = read_outcomes(path)
    assert [r["task_id"] for r in records] == ["a"] and bad == 1


def test_requests_come_from_the_samples_task_id_column(tmp_path):
    path = tmp_path / "s.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(
            "metric_name,timestamp,metric_value,expected_response,status,task_id\n"
            "http_req_duration,1000500,500,true,202,p-0\n"
            "http_req_duration,1001000,10,false,503,p-1\n"
            "http_req_duration,1001000,10,true,200,\n"
            "dropped_iterations,1001000,1,,,\n"
        )
    reqs = read_requests(path)
    assert reqs == [
        Request(1000.0, 1000.5, 202, "p-0"),
        Request(1000.99, 1001.0, 503, "p-1"),
        Request(1000.99, 1001.0, 200, ""),  # a sync request: no task id, still a request
    ]
    assert accepted_ids(reqs) == {"p-0"}


def test_fault_effects_count_errors_and_recovery():
    # fault at t=10; requests fail from 10.2 to 11.5; the first 202 after that ends at 12.0
    reqs = [Request(9.0, 9.1, 202, "a"), Request(10.2, 10.3, 503, "b"), Request(11.5, 13.5, 0, "c")]
    reqs += [Request(11.9, 12.0, 202, "d"), Request(20.0, 20.1, 202, "e")]
    (eff,) = fault_effects(reqs, [{"action": "broker_restart", "started_unix_s": 10.0}], load_end_s=30.0)
    assert eff["requests"] == 4 and eff["errors"] == 2 and eff["rejected_503"] == 1
    assert eff["first_error_s"] == pytest.approx(0.2) and eff["recovery_s"] == pytest.approx(2.0)
    # on the sync path the expected answer is 200
    sync = [Request(10.5, 10.6, 502, ""), Request(11.0, 12.0, 200, "")]
    (eff,) = fault_effects(sync, [{"action": "core_kill", "started_unix_s": 10.0}], 30.0, expected_status=200)
    assert eff["errors"] == 1 and eff["recovery_s"] == pytest.approx(2.0)
    # a fault the clients never saw recovers at once
    (eff,) = fault_effects(reqs, [{"action": "core_kill", "started_unix_s": 19.0}], load_end_s=30.0)
    assert eff["errors"] == 0 and eff["recovery_s"] == 0.0


def dead_message(message_id=None, reason="delivery_limit", payload="", headers=None):
    """A dead-letter queue message as the management API's get gives it."""
    deaths = [{"count": 1, "exchange": "", "queue": "tasks", "reason": reason, "routing-keys": ["tasks"]}]
    properties = {"headers": {"x-death": deaths, "x-first-death-queue": "tasks", **(headers or {})}}
    if message_id:
        properties["message_id"] = message_id
    return {"properties": properties, "payload": payload, "payload_encoding": "string"}


def test_a_dead_letter_is_read_by_its_message_id_celery_header_or_body():
    assert parse_dead_letter(dead_message("a")) == {
        "task_id": "a",
        "reason": "delivery_limit",
        "queue": "tasks",
    }
    assert parse_dead_letter(dead_message(headers={"id": "b", "task": "offload.work"}))["task_id"] == "b"
    assert parse_dead_letter(dead_message(payload='{"id": "c", "enqueued_at_ns": 1}'))["task_id"] == "c"
    first = dead_message("d", reason="rejected", headers={"x-first-death-reason": "delivery_limit"})
    assert parse_dead_letter(first)["reason"] == "delivery_limit"
    assert parse_dead_letter(dead_message(payload="not json")) is None
    assert parse_dead_letter({"payload": "{}"}) is None


def test_tasks_the_broker_dead_lettered_are_accounted_for_not_lost():
    accepted = {"a", "b", "c", "d"}
    dead = [
        {"task_id": "b", "reason": "delivery_limit"},
        {"task_id": "c", "reason": "rejected"},  # the core's own: it recorded c
        {"task_id": "old", "reason": "delivery_limit"},  # an earlier step's
    ]
    outcomes = [done("a"), done("c", "dead_lettered")]
    ledger = build_ledger(accepted, outcomes, still_queued=0, dead_letters=dead)
    assert ledger["lost"] == 1 and ledger["examples"]["lost"] == ["d"]
    assert ledger["dead_lettered_by_broker"] == 1 and ledger["examples"]["dead_lettered_by_broker"] == ["b"]
    assert ledger["dead_lettered_by_broker_reasons"] == {"delivery_limit": 1}
    assert ledger["dead_lettered"] == 1 and ledger["done_not_accepted"] == 0
    # without looking at the dead-letter queue, b would be lost
    unseen = build_ledger(accepted, outcomes, still_queued=0)
    assert unseen["lost"] == 2 and unseen["dead_lettered_by_broker"] is None


def test_dead_letters_file_round_trip(tmp_path):
    entries = [{"task_id": "a", "reason": "delivery_limit", "queue": "tasks"}]
    assert write_dead_letters(tmp_path / "d.jsonl.gz", entries) == 1
    assert read_dead_letters(tmp_path / "d.jsonl.gz") == entries
