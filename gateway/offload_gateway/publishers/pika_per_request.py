"""A publisher the original study tried first: a new pika BlockingConnection per request.

Exists to be measured (connection setup costs several round trips per request), never as a
default.
"""

from __future__ import annotations

import logging

from ..settings import Settings
from ..task import TaskMessage
from . import pika_support
from .base import Publisher

log = logging.getLogger(__name__)


class PikaPerRequestPublisher(Publisher):
    def __init__(self, settings: Settings):
        self._settings = settings
        self._brokers = pika_support.BrokerList(settings)

    def publish(self, message: TaskMessage) -> None:
        connection = None
        try:
            connection = self._brokers.connect()
            channel = pika_support.open_channel(connection, self._settings)
            pika_support.publish(
                connection, channel, self._settings.task_queue, message, self._settings.publish_timeout_s
            )
        except Exception as exc:
            log.warning("publish failed: %r", exc)
            raise pika_support.describe(exc, self._settings.task_queue) from exc
        finally:
            pika_support.close_quietly(connection)


def create(settings: Settings) -> Publisher:
    return PikaPerRequestPublisher(settings)
