"""The core's retries as its broker user may make them (docs/interfaces.md, "Broker users"): the
retry exchange and the delay queues it declares, a failed attempt through a delay queue, a task
that can never succeed in the dead-letter queue, and what the others may not do there. Part of
broker_privilege_checks.CHECKS, run on the test broker and on the lab's."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from urllib.parse import quote

from broker_under_test import (
    LEDGER_WAIT_S,
    BrokerUnderTest,
    publish,
    publish_task,
    queue_path,
    records_of,
    task_body,
)
from broker_users import Topology

from offload_lab.services.broker import OutcomeRecords


def the_core_declared_its_retry_topology(broker: BrokerUnderTest) -> None:
    """The retry exchange (direct, durable) and one delay queue per delay, bound by its delay:
    per-queue TTL, dead-lettered back to the task exchange with the task queue's key, bounded
    (x-max-length, x-overflow reject-publish). Declaring them takes the core's configure, write
    and read on the retry names (docs/interfaces.md, "Broker users")."""
    names, api = broker.topology, broker.management("controller")
    exchange_path = f"/api/exchanges/{quote(names.vhost, safe='')}/{quote(broker.retry_exchange, safe='')}"
    exchange = api.get(exchange_path)
    assert (exchange["type"], exchange["durable"]) == ("direct", True)
    bindings = api.get(f"{exchange_path}/bindings/source")
    # at least these: a sweep with other delays (the e2e's failures-quick) leaves its queues too
    assert {(b["destination_type"], b["destination"], b["routing_key"]) for b in bindings} >= {
        ("queue", queue, str(ms))
        for queue, ms in zip(broker.delay_queues, broker.retry_delays_ms, strict=True)
    }
    for queue, ms in zip(broker.delay_queues, broker.retry_delays_ms, strict=True):
        declared = api.get(queue_path(broker, queue))
        arguments = declared["arguments"]
        assert declared["durable"] is True, queue
        assert arguments["x-message-ttl"] == ms, arguments
        assert arguments["x-dead-letter-exchange"] == names.task_queue, arguments
        assert arguments["x-dead-letter-routing-key"] == names.task_queue, arguments
        assert arguments["x-max-length"] == broker.retry_queue_max_length, arguments
        assert arguments["x-overflow"] == "reject-publish", arguments


def a_failed_attempt_goes_through_a_delay_queue_and_the_next_one_is_done(broker: BrokerUnderTest) -> None:
    """The core publishes the failed attempt to the retry exchange (its write there); the delay
    queue gives it back to the task exchange after its TTL; attempt 2 is done. The id's prefix
    `fail-transient-1-` is the core's test hook: its first attempt fails transiently."""
    task_id = f"fail-transient-1-privileges-{uuid.uuid4().hex}"
    publish_task(broker, task_id)
    records = records_of(broker, task_id)
    assert [(r["outcome"], r.get("attempt")) for r in records] == [("retried", 1), ("done", 2)], records
    assert records[0]["delay_ms"] == broker.retry_delays_ms[0], records


def a_task_that_can_never_succeed_is_dead_lettered_by_the_core(broker: BrokerUnderTest) -> None:
    """The core publishes it to the dead-letter exchange itself (its write on tasks.dlx): it is
    in the dead-letter queue, and its record says why. The prefix `fail-permanent-` is the
    core's test hook: such a task always fails permanently."""
    task_id = f"fail-permanent-privileges-{uuid.uuid4().hex}"
    publish_task(broker, task_id)
    [record] = records_of(broker, task_id)
    assert (record["outcome"], record.get("reason"), record.get("attempt")) == (
        "dead_lettered",
        "permanent",
        1,
    )
    dead = OutcomeRecords(
        broker.management("controller"), broker.topology.ledger_queue, broker.topology.dead_letter_queue
    )
    deadline = time.monotonic() + LEDGER_WAIT_S
    while task_id not in {m["properties"].get("message_id") for m in dead.dead_letters()}:
        assert time.monotonic() < deadline, f"{task_id} not in {broker.topology.dead_letter_queue}"
        time.sleep(0.2)


def retry_refusals(own: str) -> list[tuple[str, str, Callable[[Topology], Callable[[object], object]]]]:
    """(part, what, operation on the names): each must be refused. The retry names are the retry
    exchange and delay queues of digits, nothing else; only the core may use them."""
    return [
        (
            "core",
            "declare a queue under the retry exchange's name that is no delay",
            lambda n: lambda ch: ch.queue_declare(f"{n.task_queue}.retry.{own}", durable=True),
        ),
        (
            "core",
            "declare an exchange next to the retry exchange",
            lambda n: lambda ch: ch.exchange_declare(f"{n.task_queue}.retryX", "fanout"),
        ),
        (
            "gateway",
            "publish to the retry exchange",
            lambda n: lambda ch: publish(ch, "1000", task_body(own), own, exchange=f"{n.task_queue}.retry"),
        ),
        (
            "gateway",
            "basic.get from a delay queue",
            lambda n: lambda ch: ch.basic_get(f"{n.task_queue}.retry.1000"),
        ),
        (
            "controller",
            "publish to the retry exchange",
            lambda n: lambda ch: publish(ch, "1000", task_body(own), own, exchange=f"{n.task_queue}.retry"),
        ),
        (
            "controller",
            "basic.get from a delay queue",
            lambda n: lambda ch: ch.basic_get(f"{n.task_queue}.retry.1000"),
        ),
    ]
