"""The broker as each of its users sees it, for the privilege checks (broker_privilege_checks.py,
broker_retry_checks.py): a connection and the management API per user, and the operations the
checks are made of."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import pika
import pika.exceptions
import pytest
from broker_users import BrokerUser, Topology, role_retries

from offload_lab.services.broker import ManagementAPI, OutcomeRecords

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
    # the core's RETRY_DELAYS_MS and RETRY_QUEUE_MAX_LENGTH (as the core_go role provisions them)
    retry_delays_ms: tuple[int, ...] = role_retries()[0]
    retry_queue_max_length: int = role_retries()[1]

    @property
    def retry_exchange(self) -> str:
        return f"{self.topology.task_queue}.retry"

    @property
    def delay_queues(self) -> list[str]:
        return [f"{self.retry_exchange}.{ms}" for ms in self.retry_delays_ms]

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


def task_body(task_id: str) -> bytes:
    """A task of the gateway's own format (docs/interfaces.md), no work to do."""
    return json.dumps({"id": task_id, "enqueued_at_ns": time.time_ns(), "payload": {"work_ms": 0}}).encode()


def forged_record(task_id: str) -> bytes:
    """An outcome record of the core's format (docs/interfaces.md), as a forger would write it."""
    return json.dumps({"task_id": task_id, "outcome": "done", "completed_at_ns": time.time_ns()}).encode()


def records_of(broker: BrokerUnderTest, task_id: str, outcomes=("done", "dead_lettered")) -> list[dict]:
    """The records of one task the gateway published, once one of them has one of `outcomes`
    (its last): taken from the ledger as the controller (every record in it goes)."""
    ledger = OutcomeRecords(
        broker.management("controller"), broker.topology.ledger_queue, broker.topology.dead_letter_queue
    )
    records: list[dict] = []
    deadline = time.monotonic() + LEDGER_WAIT_S
    while not any(r.get("task_id") == task_id and r.get("outcome") in outcomes for r in records):
        assert time.monotonic() < deadline, f"no record of {task_id} in the ledger: {records[-5:]}"
        time.sleep(0.2)
        records += [json.loads(body) for body in ledger.take()]
    return [r for r in records if r.get("task_id") == task_id]


def publish_task(broker: BrokerUnderTest, task_id: str) -> None:
    """As the gateway publishes one: to the task exchange, confirmed."""
    connection = broker.connect("gateway")
    try:
        publish(connection.channel(), broker.topology.task_queue, task_body(task_id), task_id)
    finally:
        connection.close()


def queue_path(broker: BrokerUnderTest, queue: str) -> str:
    return f"/api/queues/{quote(broker.topology.vhost, safe='')}/{quote(queue, safe='')}"
