"""What each broker user may and may not do, checked on a real broker with a core running as its
own user: the test broker (tests/provision/test_broker_privileges.py: users made by the rabbitmq
role's own tasks, the real core built from core-go/) and the lab's (tests/e2e/
test_e2e_broker_privileges.py). One list of checks, CHECKS, which both run.

A refused AMQP operation closes the channel it was tried on (403 ACCESS_REFUSED), before it has
any effect: every refusal is tried on a channel of its own, and none changes the broker."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import pika
import pika.exceptions
import pytest
import requests
from broker_users import BrokerUser, Topology

from offload_lab.broker import ManagementAPI, OutcomeRecords

ACCESS_REFUSED = 403
# the management API's answer when the broker refuses what it does as the user
MANAGEMENT_REFUSED = 401
LEDGER_WAIT_S = 30
STATISTICS_WAIT_S = 15


@dataclass(frozen=True)
class BrokerUnderTest:
    host: str
    amqp_port: int
    management_url: str  # http://host:port
    users: dict[str, BrokerUser]  # by part: gateway, core, controller
    passwords: dict[str, str]
    topology: Topology

    def amqp_url(self, part: str) -> str:
        user, password = quote(self.users[part].name, safe=""), quote(self.passwords[part], safe="")
        return f"amqp://{user}:{password}@{self.host}:{self.amqp_port}/{quote(self.topology.vhost, safe='')}"

    def connect(self, part: str) -> pika.BlockingConnection:
        parameters = pika.URLParameters(self.amqp_url(part))
        parameters.connection_attempts = 1
        parameters.socket_timeout = parameters.blocked_connection_timeout = 10
        return pika.BlockingConnection(parameters)

    def management(self, part: str) -> ManagementAPI:
        """The management API as this user, through fab's own client."""
        return ManagementAPI(
            self.management_url, self.users[part].name, self.passwords[part], self.topology.vhost
        )


def refused(broker: BrokerUnderTest, part: str, operation: Callable[[object], object]) -> str:
    """Tries operation(channel) as `part`: the broker must refuse it (the channel closed with 403
    ACCESS_REFUSED). The broker's reason."""
    connection = broker.connect(part)
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            operation(connection.channel())
        assert caught.value.reply_code == ACCESS_REFUSED, caught.value
        return caught.value.reply_text
    finally:
        if connection.is_open:
            connection.close()


def publish(channel, queue: str, body: bytes, message_id: str, exchange: str | None = None) -> None:
    """Persistent, mandatory, confirmed, to `exchange` with the queue's name as the routing key;
    by default through the exchange named like the queue, as the gateway publishes a task to the
    task exchange ("" is the default exchange, amq.default). Raises if the broker refuses,
    returns (no queue) or nacks it."""
    channel.confirm_delivery()
    properties = pika.BasicProperties(message_id=message_id, content_type="application/json", delivery_mode=2)
    exchange = queue if exchange is None else exchange
    channel.basic_publish(exchange, queue, body, properties, mandatory=True)


def _task(task_id: str) -> bytes:
    """A task of the gateway's own format (docs/interfaces.md), no work to do."""
    return json.dumps({"id": task_id, "enqueued_at_ns": time.time_ns(), "payload": {"work_ms": 0}}).encode()


def _record(task_id: str) -> bytes:
    """An outcome record of the core's format (docs/interfaces.md), as a forger would write it."""
    return json.dumps({"task_id": task_id, "outcome": "done", "completed_at_ns": time.time_ns()}).encode()


# ------------------------------------------------------------------------ what each may do


def a_task_goes_from_the_gateway_through_the_core_into_the_ledger_fab_takes(broker: BrokerUnderTest) -> None:
    """The three users' whole job: the gateway publishes a task, the core works it and records
    it, the controller takes the record (fab's OutcomeRecords.take: get with ack, through the
    management API). Takes every record in the ledger on the way."""
    names = broker.topology
    task_id = f"privileges-{uuid.uuid4().hex}"
    connection = broker.connect("gateway")
    try:
        publish(connection.channel(), names.task_queue, _task(task_id), task_id)
    finally:
        connection.close()
    ledger = OutcomeRecords(broker.management("controller"), names.ledger_queue)
    records: list[dict] = []
    deadline = time.monotonic() + LEDGER_WAIT_S
    while not any(r.get("task_id") == task_id for r in records):
        assert time.monotonic() < deadline, f"no record of {task_id} in {names.ledger_queue}: {records[-5:]}"
        time.sleep(0.2)
        records += [json.loads(body) for body in ledger.take()]
    [record] = [r for r in records if r.get("task_id") == task_id]
    assert record["outcome"] == "done", record


def the_core_consumes_the_task_queue_as_its_own_user(broker: BrokerUnderTest) -> None:
    """Seen as the controller sees it. The management API's figures lag by up to a statistics
    interval (5 s by default, 1 s on the lab): until then a consumer may have no channel details
    (an empty list)."""
    api, path = broker.management("controller"), _queue_path(broker, broker.topology.task_queue)
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
    task_queue = api.get(_queue_path(broker, names.task_queue))
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
        assert api.get(_queue_path(broker, queue))["durable"] is True
    task_exchange_path = f"/api/exchanges/{quote(names.vhost, safe='')}/{quote(names.task_queue, safe='')}"
    task_exchange = api.get(task_exchange_path)
    assert (task_exchange["type"], task_exchange["durable"]) == ("direct", True)
    bindings = api.get(f"{task_exchange_path}/bindings/source")
    assert {(b["destination_type"], b["destination"], b["routing_key"]) for b in bindings} == {
        ("queue", names.task_queue, names.task_queue)
    }


def the_controller_reads_queue_depths_and_purges_the_ledger(broker: BrokerUnderTest) -> None:
    """What fab asks of the management API: each queue's depth, the version, the ledger purged."""
    names, api = broker.topology, broker.management("controller")
    for queue in (names.task_queue, names.dead_letter_queue, names.ledger_queue):
        api.queue_depth(queue)
    assert api.version()
    ledger = OutcomeRecords(api, names.ledger_queue)
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
        url = broker.management_url + _queue_path(broker, queue)
        get = {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"}
        for response in (
            requests.post(f"{url}/get", json=get, auth=auth, timeout=10),
            requests.delete(f"{url}/contents", auth=auth, timeout=10),
        ):
            assert response.status_code == MANAGEMENT_REFUSED, (queue, response.status_code, response.text)
            # "Access refused." or the broker's "ACCESS_REFUSED - access to queue ... refused ..."
            assert re.match(r"(?i)access.refused", response.json()["reason"]), response.text


def _queue_path(broker: BrokerUnderTest, queue: str) -> str:
    return f"/api/queues/{quote(broker.topology.vhost, safe='')}/{quote(queue, safe='')}"


CHECKS: list[Callable[[BrokerUnderTest], None]] = [
    a_task_goes_from_the_gateway_through_the_core_into_the_ledger_fab_takes,
    the_core_consumes_the_task_queue_as_its_own_user,
    the_core_declared_its_topology,
    the_controller_reads_queue_depths_and_purges_the_ledger,
    the_controller_looks_at_the_dead_letters_without_removing_them,
    no_user_is_an_administrator,
    the_controller_cannot_take_or_purge_the_task_queue_through_the_management_api,
    *(_refusal_check(*refusal) for refusal in _refusals()),
]


def check_id(check: Callable) -> str:
    return check.__name__
