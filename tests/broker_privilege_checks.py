"""What each broker user may and may not do, checked on a real broker with a core running as its
own user: the test broker (tests/provision/test_broker_privileges.py: users made by the rabbitmq
role's own tasks, the real core built from core-go/) and the lab's (tests/e2e/
test_e2e_broker_privileges.py). One list of checks, CHECKS, which both run; those of the core's
retries are in broker_retry_checks.py, the broker as each user sees it in broker_under_test.py.

A refused AMQP operation closes the channel it was tried on (403 ACCESS_REFUSED), before it has
any effect: every refusal is tried on a channel of its own, and none changes the broker."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from urllib.parse import quote

import requests
from broker_retry_checks import (
    a_failed_attempt_goes_through_a_delay_queue_and_the_next_one_is_done,
    a_task_that_can_never_succeed_is_dead_lettered_by_the_core,
    retry_refusals,
    the_core_declared_its_retry_topology,
)
from broker_under_test import (
    LEDGER_WAIT_S,
    MANAGEMENT_REFUSED,
    STATISTICS_WAIT_S,
    BrokerUnderTest,
    publish,
    publish_task,
    queue_path,
    records_of,
    refused,
)
from broker_under_test import forged_record as _record
from broker_under_test import task_body as _task
from broker_users import Topology

from offload_lab.services.broker import OutcomeRecords

__all__ = ["CHECKS", "BrokerUnderTest", "check_id"]  # for the tests that run them

# ------------------------------------------------------------------------ what each may do


def a_task_goes_from_the_gateway_through_the_core_into_the_ledger_fab_takes(broker: BrokerUnderTest) -> None:
    """The three users' whole job: the gateway publishes a task, the core works it and records
    it, the controller takes the record (fab's OutcomeRecords.take: get with ack, through the
    management API). Takes every record in the ledger on the way."""
    task_id = f"privileges-{uuid.uuid4().hex}"
    publish_task(broker, task_id)
    [record] = records_of(broker, task_id)
    assert record["outcome"] == "done", record


def the_core_consumes_the_task_queue_as_its_own_user(broker: BrokerUnderTest) -> None:
    """Seen as the controller sees it. The management API's figures lag by up to a statistics
    interval (5 s by default, 1 s on the lab): until then a consumer may have no channel details
    (an empty list)."""
    api, path = broker.management("controller"), queue_path(broker, broker.topology.task_queue)
    deadline = time.monotonic() + STATISTICS_WAIT_S
    while True:
        consumers = api.get(path).get("consumer_details") or []
        users = {(c.get("channel_details") or {}).get("user") for c in consumers}
        if consumers and None not in users:
            break
        assert time.monotonic() < deadline, f"no consumer of {broker.topology.task_queue} seen: {consumers}"
        time.sleep(0.5)
    assert users == {broker.users["core"].name}, users


def the_core_declared_its_topology(broker: BrokerUnderTest) -> None:
    """Only the core's user may configure these (the rabbitmq role declares nothing): the task
    exchange (the task queue's name) routes to the task queue alone."""
    names, api = broker.topology, broker.management("controller")
    task_queue = api.get(queue_path(broker, names.task_queue))
    assert task_queue["durable"] is True
    assert task_queue["arguments"]["x-dead-letter-exchange"] == names.dead_letter_exchange
    assert task_queue["arguments"]["x-dead-letter-routing-key"] == names.dead_letter_queue
    exchange_path = (
        f"/api/exchanges/{quote(names.vhost, safe='')}/{quote(names.dead_letter_exchange, safe='')}"
    )
    exchange = api.get(exchange_path)
    assert (exchange["type"], exchange["durable"]) == ("direct", True)
    bindings = api.get(f"{exchange_path}/bindings/source")
    assert (names.dead_letter_queue, names.dead_letter_queue) in {
        (b["destination"], b["routing_key"]) for b in bindings
    }
    for queue in (names.dead_letter_queue, names.ledger_queue):
        assert api.get(queue_path(broker, queue))["durable"] is True
    task_exchange_path = f"/api/exchanges/{quote(names.vhost, safe='')}/{quote(names.task_queue, safe='')}"
    task_exchange = api.get(task_exchange_path)
    assert (task_exchange["type"], task_exchange["durable"]) == ("direct", True)
    bindings = api.get(f"{task_exchange_path}/bindings/source")
    assert {(b["destination_type"], b["destination"], b["routing_key"]) for b in bindings} == {
        ("queue", names.task_queue, names.task_queue)
    }


def the_controller_reads_queue_depths_and_purges_the_ledger(broker: BrokerUnderTest) -> None:
    """What fab asks of the management API: each queue's depth, the delay queues' in one
    listing, the version, the ledger purged."""
    names, api = broker.topology, broker.management("controller")
    for queue in (names.task_queue, names.dead_letter_queue, names.ledger_queue):
        api.queue_depth(queue)
    assert set(broker.delay_queues) <= set(api.queue_depths())
    assert api.version()
    ledger = OutcomeRecords(api, names.ledger_queue, names.dead_letter_queue)
    assert ledger.exists()
    ledger.purge()


def the_controller_looks_at_the_dead_letters_without_removing_them(broker: BrokerUnderTest) -> None:
    """The ledger's look at the dead-letter queue (OutcomeRecords.dead_letters: get with
    ack_requeue_true, read on that queue): a poison task the gateway published, which the core
    dead-lettered, is seen by its id and stays there."""
    names = broker.topology
    task_id = f"privileges-poison-{uuid.uuid4().hex}"
    connection = broker.connect("gateway")
    try:
        publish(connection.channel(), names.task_queue, b"not a task", task_id)
    finally:
        connection.close()
    api = broker.management("controller")
    records = OutcomeRecords(api, names.ledger_queue, names.dead_letter_queue)
    deadline = time.monotonic() + LEDGER_WAIT_S
    while True:
        ids = [m["properties"].get("message_id") for m in records.dead_letters()]
        if task_id in ids:
            break
        assert time.monotonic() < deadline, f"{task_id} not in {names.dead_letter_queue}: {ids[-5:]}"
        time.sleep(0.2)
    again = [m["properties"].get("message_id") for m in records.dead_letters()]
    assert again.count(task_id) == 1 and len(again) >= len(ids), (ids, again)


def no_user_is_an_administrator(broker: BrokerUnderTest) -> None:
    """The management API, as each user: the gateway and the core cannot log in at all; the
    controller is a monitoring user, nothing more."""
    for part, user in broker.users.items():
        response = requests.get(
            f"{broker.management_url}/api/whoami", auth=(user.name, broker.passwords[part]), timeout=10
        )
        if part == "controller":
            assert response.status_code == 200, response.text
            assert response.json()["tags"] == ["monitoring"], response.json()
        else:
            assert response.status_code == 401, (part, response.status_code, response.text)
            assert response.json()["reason"] == "Not management user", response.text


# ------------------------------------------------------------------------ what each may not do


def _refusals() -> list[tuple[str, str, Callable[[Topology], Callable[[object], object]]]]:
    """(part, what, operation on the names): each must be refused."""
    own = "privileges-check"
    return [
        ("gateway", "basic.get from the task queue", lambda n: lambda ch: ch.basic_get(n.task_queue)),
        ("gateway", "consume the task queue", lambda n: lambda ch: ch.basic_consume(n.task_queue, _ignore)),
        ("gateway", "purge the task queue", lambda n: lambda ch: ch.queue_purge(n.task_queue)),
        ("gateway", "delete the task queue", lambda n: lambda ch: ch.queue_delete(n.task_queue)),
        (
            "gateway",
            "declare the task queue",
            lambda n: lambda ch: ch.queue_declare(n.task_queue, durable=True),
        ),
        ("gateway", "declare an exchange", lambda n: lambda ch: ch.exchange_declare(f"{own}.x", "direct")),
        ("gateway", "basic.get from the ledger", lambda n: lambda ch: ch.basic_get(n.ledger_queue)),
        # its write is on the task exchange alone: amq.default would reach every queue
        (
            "gateway",
            "publish a task through the default exchange",
            lambda n: lambda ch: publish(ch, n.task_queue, _task(own), own, exchange=""),
        ),
        (
            "gateway",
            "forge a ledger record through the default exchange",
            lambda n: lambda ch: publish(ch, n.ledger_queue, _record(own), own, exchange=""),
        ),
        (
            "gateway",
            "put a dead letter in the dead-letter queue through the default exchange",
            lambda n: lambda ch: publish(ch, n.dead_letter_queue, _task(own), own, exchange=""),
        ),
        (
            "gateway",
            "publish to the dead-letter exchange",
            lambda n: (
                lambda ch: publish(ch, n.dead_letter_queue, _task(own), own, exchange=n.dead_letter_exchange)
            ),
        ),
        (
            "gateway",
            "bind a queue to the task exchange",
            lambda n: lambda ch: ch.queue_bind(n.ledger_queue, n.task_queue, "forged"),
        ),
        (
            "core",
            "declare an exchange of its choosing",
            lambda n: lambda ch: ch.exchange_declare(f"{own}.x", "fanout"),
        ),
        (
            "core",
            "declare a queue of its choosing",
            lambda n: lambda ch: ch.queue_declare(f"{own}.q", durable=True),
        ),
        ("core", "delete a queue not its own", lambda n: lambda ch: ch.queue_delete(f"{own}.q")),
        ("core", "basic.get from the ledger", lambda n: lambda ch: ch.basic_get(n.ledger_queue)),
        ("core", "purge the dead-letter queue", lambda n: lambda ch: ch.queue_purge(n.dead_letter_queue)),
        *retry_refusals(own),
        ("controller", "publish a task", lambda n: lambda ch: publish(ch, n.task_queue, _task(own), own)),
        (
            "controller",
            "publish a task through the default exchange",
            lambda n: lambda ch: publish(ch, n.task_queue, _task(own), own, exchange=""),
        ),
        (
            "controller",
            "publish to the ledger",
            lambda n: lambda ch: publish(ch, n.ledger_queue, b"{}", own, exchange=""),
        ),
        ("controller", "basic.get from the task queue", lambda n: lambda ch: ch.basic_get(n.task_queue)),
        (
            "controller",
            "declare the ledger queue",
            lambda n: lambda ch: ch.queue_declare(n.ledger_queue, durable=True),
        ),
        ("controller", "delete the ledger queue", lambda n: lambda ch: ch.queue_delete(n.ledger_queue)),
    ]


def _ignore(*_: object) -> None:
    pass


def _refusal_check(part: str, what: str, operation) -> Callable[[BrokerUnderTest], None]:
    def check(broker: BrokerUnderTest) -> None:
        reason = refused(broker, part, operation(broker.topology))
        assert "ACCESS_REFUSED" in reason and broker.users[part].name in reason, reason

    check.__name__ = f"the {part} cannot {what}".replace(" ", "_")
    return check


def the_controller_cannot_take_or_purge_the_task_queue_through_the_management_api(
    broker: BrokerUnderTest,
) -> None:
    """The management API's get and purge act as the user (read on the queue): only the ledger
    and the dead-letter queue (OutcomeRecords.take, purge and dead_letters: the checks above)."""
    names, controller = broker.topology, broker.users["controller"]
    auth = (controller.name, broker.passwords["controller"])
    for queue in (names.task_queue,):
        url = broker.management_url + queue_path(broker, queue)
        get = {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"}
        for response in (
            requests.post(f"{url}/get", json=get, auth=auth, timeout=10),
            requests.delete(f"{url}/contents", auth=auth, timeout=10),
        ):
            assert response.status_code == MANAGEMENT_REFUSED, (queue, response.status_code, response.text)
            # "Access refused." or the broker's "ACCESS_REFUSED - access to queue ... refused ..."
            assert re.match(r"(?i)access.refused", response.json()["reason"]), response.text


CHECKS: list[Callable[[BrokerUnderTest], None]] = [
    a_task_goes_from_the_gateway_through_the_core_into_the_ledger_fab_takes,
    the_core_consumes_the_task_queue_as_its_own_user,
    the_core_declared_its_topology,
    the_core_declared_its_retry_topology,
    a_failed_attempt_goes_through_a_delay_queue_and_the_next_one_is_done,
    a_task_that_can_never_succeed_is_dead_lettered_by_the_core,
    the_controller_reads_queue_depths_and_purges_the_ledger,
    the_controller_looks_at_the_dead_letters_without_removing_them,
    no_user_is_an_administrator,
    the_controller_cannot_take_or_purge_the_task_queue_through_the_management_api,
    *(_refusal_check(*refusal) for refusal in _refusals()),
]


def check_id(check: Callable) -> str:
    return check.__name__
