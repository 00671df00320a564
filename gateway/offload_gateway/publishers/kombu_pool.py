"""The default publisher: producers from `kombu.pools`, acquired per request.

Each producer in the pool holds its own connection, so concurrent requests never share one.
The pool limit is the process's concurrency (kombu's default of 10 would make requests queue
for a producer). It publishes to the task exchange and declares nothing: the core declares the
task queue and the task exchange (topology.py). Several brokers in AMQP_URL are kombu's failover
list (failover_options). A missing task exchange: the broker closes the channel (404), the
publish raises and the connection is dropped like any other failure's.
"""

from __future__ import annotations

import logging
import time

import kombu
import kombu.pools

from .. import topology
from ..settings import Settings
from ..task import CONTENT_TYPE, PERSISTENT, TaskMessage
from .base import Publisher, PublishError, closed_for_a_missing_exchange, exchange_missing, unroutable

log = logging.getLogger(__name__)

# the least time left for a confirm, so a slow acquire still gets one try
_MIN_CONFIRM_WAIT_S = 0.05
# kombu's (and Celery's broker_failover_strategy) default, named for the reader
FAILOVER_STRATEGY = "round-robin"


class _Returns:
    """py-amqp's basic.return handler on one channel (without one it raises mid-wait, leaving the
    ack unread). With confirms the broker returns an unroutable task before acking it, so once
    publish() is back the task's id is here or the task was routed."""

    def __init__(self, confirming: bool):
        self._confirming = confirming
        self._ids: set[str] = set()

    def __call__(self, exc, exchange, routing_key, message) -> None:
        task_id = message.properties.get("message_id", "")
        if self._confirming:
            self._ids.add(task_id)
        else:
            log.warning("task %s reached no queue and was dropped (published without confirms)", task_id)

    def take(self, task_id: str) -> bool:
        """Whether the broker returned this task (forgetting it)."""
        if task_id in self._ids:
            self._ids.discard(task_id)
            return True
        return False

    @classmethod
    def on(cls, channel, confirming: bool) -> _Returns:
        """The handler of this channel, added on first use."""
        handlers = channel.events["basic_return"]
        for handler in handlers:
            if isinstance(handler, cls):
                return handler
        returns = cls(confirming)
        handlers.add(returns)
        return returns


class KombuPoolPublisher(Publisher):
    def __init__(self, settings: Settings):
        self._queue = settings.task_queue
        self._exchange = topology.task_exchange(settings.task_queue)
        self._confirm = settings.publish_confirm
        self._timeout_s = settings.publish_timeout_s
        kombu.pools.set_limit(settings.worker_concurrency)
        failover = failover_options(settings)
        self._connection = kombu.Connection(
            settings.amqp_url,
            connect_timeout=failover["connect_timeout"],
            failover_strategy=FAILOVER_STRATEGY,
            transport_options={
                "confirm_publish": settings.publish_confirm,
                **failover["transport_options"],
                "read_timeout": settings.publish_timeout_s,
                "write_timeout": settings.publish_timeout_s,
            },
        )
        self._producers = kombu.pools.producers[self._connection]

    def publish(self, message: TaskMessage) -> None:
        deadline = time.monotonic() + self._timeout_s
        try:
            producer = self._producers.acquire(block=True, timeout=self._timeout_s)
        except Exception as exc:
            raise PublishError(f"no producer free within {self._timeout_s:g} s: {exc}") from exc
        connection = producer.__connection__
        try:
            _drop_if_closed_by_broker(connection)
            returns = _Returns.on(producer.channel, self._confirm)
            producer.publish(
                message.body,
                exchange=self._exchange,
                routing_key=self._queue,
                mandatory=True,
                message_id=message.id,
                content_type=CONTENT_TYPE,
                content_encoding="utf-8",
                delivery_mode=PERSISTENT,
                retry=False,
                confirm_timeout=max(deadline - time.monotonic(), _MIN_CONFIRM_WAIT_S),
            )
            returned = returns.take(message.id)
        except Exception as exc:
            # the connection's state is unknown after any failure: drop it without I/O so the
            # next request using this pool slot reconnects
            connection.collect()
            log.warning("publish failed: %r", exc)
            if closed_for_a_missing_exchange(exc):
                raise exchange_missing(self._exchange) from exc
            raise PublishError(_describe(exc)) from exc
        finally:
            producer.release()
        if returned:
            log.warning("task %s reached no queue: answered 503", message.id)
            raise unroutable(self._queue)

    def warm_up(self) -> None:
        producer = self._producers.acquire(block=True, timeout=self._timeout_s)
        try:
            producer.__connection__.default_channel  # noqa: B018 - the property connects and opens it
        except Exception as exc:
            producer.__connection__.collect()
            log.warning("warm-up: broker not reachable yet: %r", exc)
        finally:
            producer.release()

    def close(self) -> None:
        # kombu.pools is a process-wide registry keyed by connection settings; reset empties it
        # so a later publisher with the same settings starts with fresh pools
        kombu.pools.reset()


def failover_options(settings: Settings) -> dict:
    """kombu's failover, as kombu_pool and Celery use it. AMQP_URL "a;b;c" is kombu's own list
    of alternates: a connection starts at the first and, when a connect fails, switches to the
    next (round-robin), so a connection lost with its broker reconnects to the next one. A
    request tries each broker at most once, without sleeping (max_retries = brokers - 1; with
    one broker it fails at once and the next request retries), each attempt bounded so all of
    them fit in PUBLISH_TIMEOUT_S."""
    brokers = len(settings.amqp_urls)
    return {
        "connect_timeout": settings.publish_timeout_s / brokers,
        "transport_options": {
            "max_retries": brokers - 1,
            "interval_start": 0,
            "interval_step": 0,
            "connect_retries_timeout": settings.publish_timeout_s,
        },
    }


def _drop_if_closed_by_broker(connection: kombu.Connection) -> None:
    """A pooled connection the broker closed while it sat idle (a broker restart, say) would
    fail the next publish. A non-blocking read finds that out before anything is sent, so the
    request reconnects instead of failing, and no message can be sent twice."""
    if not connection.connected:
        return
    try:
        connection.drain_events(timeout=0)
    except TimeoutError:
        return  # nothing to read: the connection is alive
    except Exception as exc:
        log.info("pooled connection was closed by the broker (%r): reconnecting", exc)
        connection.collect()


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "timed out" in text or isinstance(exc, TimeoutError):
        return f"broker did not confirm in time: {text}"
    return f"broker unavailable: {text}"


def create(settings: Settings) -> Publisher:
    return KombuPoolPublisher(settings)
