"""What the two pika publishers share: connection parameters and a bounded publish."""

from __future__ import annotations

import pika
import pika.exceptions

from ..settings import Settings
from ..task import CONTENT_TYPE, PERSISTENT, TaskMessage
from .base import PublishError, unroutable


class PublishTimedOut(Exception):
    pass


def connection_parameters(settings: Settings) -> pika.URLParameters:
    parameters = pika.URLParameters(settings.amqp_url)
    timeout = settings.publish_timeout_s
    parameters.connection_attempts = 1
    parameters.socket_timeout = timeout
    parameters.stack_timeout = timeout
    parameters.blocked_connection_timeout = timeout
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
    """basic_publish, mandatory and bounded. With confirms on, pika raises UnroutableError for a
    task the broker returned (no queue); without, the broker's return only gets logged by pika.
    pika's BlockingConnection waits for a confirm without a timeout, so a timer on the
    connection's own I/O loop aborts the stream, which ends the wait with an error (pika calls
    the timer from inside that wait; its public call_later would not)."""
    impl = connection._impl
    timer = impl._adapter_call_later(
        timeout_s, lambda: impl._terminate_stream(PublishTimedOut(f"no confirm within {timeout_s:g} s"))
    )
    try:
        channel.basic_publish(
            exchange="",
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
    text = str(exc) or type(exc).__name__
    return PublishError(f"broker unavailable or not confirming: {type(exc).__name__}: {text}")
