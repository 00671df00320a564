"""A publisher the original study tried: ONE pika BlockingConnection per process, shared by
every request with NO lock.

pika's BlockingConnection is not thread-safe. Under gthread workers, concurrent requests
interleave frames and corrupt the connection's state (observed: broker 505 UNEXPECTED_FRAME,
"tx buffer size underflow", StreamLostError, requests answered 503). The missing lock is
deliberate: this module exists to measure and demonstrate that race, never as a default.
With one request at a time per process (sync worker, or one thread) it does not break, but it
is still unsafe.
"""

from __future__ import annotations

import logging

import pika
import pika.exceptions

from ..settings import Settings
from ..task import TaskMessage
from . import pika_support
from .base import Publisher, closed_for_a_missing_exchange

log = logging.getLogger(__name__)


class PikaSharedPublisher(Publisher):
    def __init__(self, settings: Settings):
        self._settings = settings
        self._brokers = pika_support.BrokerList(settings)
        self._connection: pika.BlockingConnection | None = None
        self._channel = None

    def publish(self, message: TaskMessage) -> None:
        try:
            if self._channel is None or not self._channel.is_open:
                self._connect()
            pika_support.publish(
                self._connection,
                self._channel,
                self._settings.task_queue,
                message,
                self._settings.publish_timeout_s,
            )
        except Exception as exc:
            log.warning("publish failed: %r", exc)
            # a task returned, or the channel closed for want of the task exchange: this broker
            # is there, so the next connection goes to it again
            broker_is_there = isinstance(exc, pika.exceptions.UnroutableError) or (
                closed_for_a_missing_exchange(exc)
            )
            if not broker_is_there:
                self._brokers.lost(self._connection)
            self.close()
            raise pika_support.describe(exc, self._settings.task_queue) from exc

    def warm_up(self) -> None:
        try:
            self._connect()
        except Exception as exc:
            self.close()
            log.warning("warm-up: broker not reachable yet: %r", exc)

    def _connect(self) -> None:
        pika_support.close_quietly(self._connection)
        self._connection = self._brokers.connect()
        self._channel = pika_support.open_channel(self._connection, self._settings)

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        pika_support.close_quietly(connection)


def create(settings: Settings) -> Publisher:
    return PikaSharedPublisher(settings)
