"""What the two pika publishers share: connection parameters and a bounded publish."""

from __future__ import annotations

import pika
import pika.exceptions

from .. import topology
from ..settings import Settings
from ..task import CONTENT_TYPE, PERSISTENT, TaskMessage
from .base import PublishError, closed_for_a_missing_exchange, exchange_missing, unroutable


class PublishTimedOut(Exception):
    pass


class BrokerList:
    """AMQP_URL's brokers as pika connection parameters, in the order to try them. pika's own
    failover does the trying: a BlockingConnection given a list connects to the first that
    answers. The list then starts at the broker that answered (later connections go straight to
    it) and, after a lost connection, at the broker after the lost one."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._urls = settings.amqp_urls
        self._start = 0

    def parameters(self, budget_s: float | None = None) -> list[pika.URLParameters]:
        """Fresh parameters, one per broker from the current start; each connection attempt
        bounded so that trying them all fits in `budget_s` (default PUBLISH_TIMEOUT_S)."""
        budget_s = self._settings.publish_timeout_s if budget_s is None else budget_s
        attempt_s = budget_s / len(self._urls)
        ordered = self._urls[self._start :] + self._urls[: self._start]
        return [_bounded_parameters(url, attempt_s, self._settings.publish_timeout_s) for url in ordered]

    def connect(self, budget_s: float | None = None) -> pika.BlockingConnection:
        connection = pika.BlockingConnection(self.parameters(budget_s))
        self._start = self._index_of(connection, default=self._start)
        return connection

    def lost(self, connection: pika.BlockingConnection | None) -> None:
        """The connection is gone: the next connect starts at the broker after its one."""
        if connection is not None:
            self._start = (self._index_of(connection, default=self._start - 1) + 1) % len(self._urls)

    def _index_of(self, connection: pika.BlockingConnection, default: int) -> int:
        """Which of the brokers the connection went to (pika keeps a copy of its parameters)."""
        used = connection._impl.params
        for index, url in enumerate(self._urls):
            candidate = pika.URLParameters(url)
            if (candidate.host, candidate.port, candidate.virtual_host) == (
                used.host,
                used.port,
                used.virtual_host,
            ):
                return index
        return default


def _bounded_parameters(url: str, attempt_s: float, publish_timeout_s: float) -> pika.URLParameters:
    parameters = pika.URLParameters(url)
    parameters.connection_attempts = 1
    parameters.socket_timeout = attempt_s
    parameters.stack_timeout = attempt_s
    parameters.blocked_connection_timeout = publish_timeout_s
    # a BlockingConnection only answers heartbeats while it does I/O: an idle shared
    # connection would be closed by the broker between bursts
    parameters.heartbeat = 0
    return parameters


def open_channel(connection: pika.BlockingConnection, settings: Settings):
    """A channel to publish on (with confirms when they are on); nothing is declared (topology.py)."""
    channel = connection.channel()
    if settings.publish_confirm:
        channel.confirm_delivery()
    return channel


def publish(connection: pika.BlockingConnection, channel, queue: str, message: TaskMessage, timeout_s: float):
    """basic_publish to the task exchange, mandatory and bounded. With confirms on, pika raises
    UnroutableError for a task the broker returned (no queue), ChannelClosedByBroker (404) if
    there is no task exchange; without, the broker's return only gets logged by pika, and a
    missing exchange closes the channel, which fails the next publish on it.
    pika's BlockingConnection waits for a confirm without a timeout, so a timer on the
    connection's own I/O loop aborts the stream, which ends the wait with an error (pika calls
    the timer from inside that wait; its public call_later would not)."""
    impl = connection._impl
    timer = impl._adapter_call_later(
        timeout_s, lambda: impl._terminate_stream(PublishTimedOut(f"no confirm within {timeout_s:g} s"))
    )
    try:
        channel.basic_publish(
            exchange=topology.task_exchange(queue),
            routing_key=queue,
            body=message.body,
            properties=pika.BasicProperties(
                message_id=message.id,
                content_type=CONTENT_TYPE,
                content_encoding="utf-8",
                delivery_mode=PERSISTENT,
            ),
            mandatory=True,
        )
    finally:
        impl._adapter_remove_timeout(timer)


def close_quietly(connection: pika.BlockingConnection | None) -> None:
    if connection is None:
        return
    try:
        if connection.is_open:
            connection.close()
    except Exception:  # noqa: BLE001 - closing a broken connection can fail in many ways
        pass


def describe(exc: Exception, queue: str) -> PublishError:
    """The PublishError for a failed publish."""
    if isinstance(exc, pika.exceptions.UnroutableError):
        return unroutable(queue)
    if closed_for_a_missing_exchange(exc):
        return exchange_missing(topology.task_exchange(queue))
    text = str(exc) or type(exc).__name__
    return PublishError(f"broker unavailable or not confirming: {type(exc).__name__}: {text}")
