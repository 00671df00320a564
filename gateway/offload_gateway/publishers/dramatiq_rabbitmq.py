"""Publisher `dramatiq`: Dramatiq's RabbitmqBroker.enqueue, what `actor.send` does, with the
gateway's task id (`message_id`) and enqueue time (`message_timestamp`, in ms).

Dramatiq keeps one pika connection and channel per thread (threading.local). Under gevent that
is one per greenlet, i.e. per client connection: unbounded, and never closed when the greenlet
ends. So the gateway lends each request one broker from a pool sized to the process's
concurrency, each broker holding its one connection and channel (a plain attribute, not a
thread-local). Per request: one broker from the pool within PUBLISH_TIMEOUT_S, one
basic.publish (mandatory when confirming, as Dramatiq does) and, with confirm_delivery, one
round trip for the confirm. A broker's first request also pays for its connection, its
channel, confirm.select and the passive check of the task queue (a channel of its own).

Three of Dramatiq's choices are replaced:
- Its exchange: enqueue publishes to the default exchange (`exchange=""`, hard-coded), which the
  gateway's broker user may not write to. The broker's `channel` is Dramatiq's own (its getter
  and deleter) seen through a thin proxy whose basic_publish sends to the task exchange
  (topology.py) instead. A missing task exchange (the broker closes the channel: 404) answers 503
  at once (TaskExchangeMissing gets through Dramatiq's retries) and drops only that channel.
- Its queue declarations: it declares the task queue (dead-lettering to its own `<queue>.XQ`
  queue, which RabbitMQ would refuse on the shared queue: 406 PRECONDITION_FAILED), `<queue>.XQ`
  and `<queue>.DQ` for delays. The gateway declares nothing (topology.py): where Dramatiq would
  declare the task queue (a broker's first enqueue, and again after the broker returned a task as
  unroutable) the broker asks, passively, whether it exists. A missing queue answers 503 at once
  (TaskQueueMissing gets through Dramatiq's retries) instead of up to 6 publishes, each on a new
  connection, that the broker would all return.
- Its unbounded waits: enqueue retries a failed publish up to 6 times, each on a new connection,
  and pika waits for a confirm without a timeout. Every connection opens with the time left
  until the request's deadline, a timer on the connection ends a confirm wait at that deadline,
  and past it no new connection is opened: the request fails within PUBLISH_TIMEOUT_S.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
import types

import pika
import pika.exceptions
from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.errors import ConnectionClosed

from .. import topology
from ..settings import Settings
from ..task import LIBRARY_TASK_NAME, TaskMessage
from . import pika_support
from .base import Publisher, PublishError, closed_for_a_missing_exchange, exchange_missing, unroutable

log = logging.getLogger(__name__)


class DeadlinePassed(Exception):
    """Raised instead of opening a connection past the request's deadline. Not an AMQP error, so
    Dramatiq's retry loops let it through."""


class _ToTaskExchange:
    """A channel of Dramatiq's whose basic_publish goes to the task exchange; anything else is
    the channel's own."""

    def __init__(self, channel, exchange: str):
        self._channel = channel
        self._exchange = exchange

    def basic_publish(self, exchange, routing_key, body, properties=None, mandatory=False):
        """pika's basic_publish, to the task exchange whatever `exchange` (Dramatiq's "") says."""
        try:
            return self._channel.basic_publish(self._exchange, routing_key, body, properties, mandatory)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if closed_for_a_missing_exchange(exc):
                raise topology.TaskExchangeMissing(self._exchange) from exc
            raise

    def __getattr__(self, name: str):
        return getattr(self._channel, name)


class _PooledRabbitmqBroker(RabbitmqBroker):
    """Dramatiq's broker, used by one request at a time (see the module's docstring)."""

    def __init__(self, settings: Settings):
        # Dramatiq splits a ";"-separated url into its list of pika parameters, its failover
        # (pika connects to the first that answers); _bounded_connection builds the same list
        # with the request's time left, starting after the broker of a lost connection
        super().__init__(url=settings.amqp_url, confirm_delivery=settings.publish_confirm)
        self._settings = settings
        self._exchange = topology.task_exchange(settings.task_queue)
        self._brokers = pika_support.BrokerList(settings)
        self.state = types.SimpleNamespace()  # the pool lends the broker to one request at a time
        self._deadline = math.inf
        self._timers: list[tuple[pika.BlockingConnection, object]] = []

    def begin_request(self, deadline: float) -> None:
        self._deadline = deadline
        connection = getattr(self.state, "connection", None)
        if connection is not None and connection.is_open:
            self._arm(connection)

    def end_request(self) -> None:
        for connection, timer in self._timers:
            with contextlib.suppress(Exception):  # gone with its connection
                connection._impl._adapter_remove_timeout(timer)
        self._timers.clear()
        self._deadline = math.inf

    def _arm(self, connection: pika.BlockingConnection) -> None:
        """End any wait on `connection` at the deadline: pika runs its timers inside its waits
        (the same way as pika_support.publish)."""
        impl = connection._impl
        left = max(self._deadline - time.monotonic(), 0)
        message = f"no confirm within {self._settings.publish_timeout_s:g} s"
        timer = impl._adapter_call_later(
            left, lambda: impl._terminate_stream(pika_support.PublishTimedOut(message))
        )
        self._timers.append((connection, timer))

    def _bounded_connection(self) -> pika.BlockingConnection:
        connection = getattr(self.state, "connection", None)
        if connection is None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise DeadlinePassed(f"no connection within {self._settings.publish_timeout_s:g} s")
            connection = self.state.connection = self._brokers.connect(budget_s=left)
            self.connections.add(connection)
            self._arm(connection)
        return connection

    def _drop_connection(self) -> None:
        """Dramatiq's deleter (it closes the channel and the connection), called on every failed
        publish; the next connection starts at the broker after this one."""
        self._brokers.lost(getattr(self.state, "connection", None))
        RabbitmqBroker.connection.fdel(self)

    connection = property(_bounded_connection, None, _drop_connection)

    def _publishing_channel(self) -> _ToTaskExchange:
        return _ToTaskExchange(RabbitmqBroker.channel.fget(self), self._exchange)

    channel = property(_publishing_channel, None, RabbitmqBroker.channel.fdel)

    def _declare_queue(self, queue_name: str) -> None:
        """Declare nothing; a missing task queue fails the request (see the module's docstring)."""
        if not topology.task_queue_exists(self.connection, queue_name):
            raise topology.TaskQueueMissing(queue_name)

    def _declare_dq_queue(self, queue_name: str) -> None:
        """No delay queue: the gateway never delays a task."""

    def _declare_xq_queue(self, queue_name: str) -> None:
        """No `<queue>.XQ`: dead letters go to the core's dead-letter queue."""


class _BrokerPool:
    """Up to `limit` brokers, made on first need, lent to one request at a time; LIFO, so the
    connections in use stay warm."""

    def __init__(self, settings: Settings, limit: int):
        self._settings = settings
        self._limit = limit
        self._idle: queue.LifoQueue[_PooledRabbitmqBroker] = queue.LifoQueue()
        self._made = 0
        self._lock = threading.Lock()

    def acquire(self, timeout_s: float) -> _PooledRabbitmqBroker:
        with contextlib.suppress(queue.Empty):
            return self._idle.get_nowait()
        with self._lock:
            if self._made < self._limit:
                self._made += 1
                return _PooledRabbitmqBroker(self._settings)
        return self._idle.get(timeout=timeout_s)

    def release(self, broker: _PooledRabbitmqBroker) -> None:
        self._idle.put(broker)

    def close(self) -> None:
        while True:
            try:
                broker = self._idle.get_nowait()
            except queue.Empty:
                return
            broker.close()


class DramatiqPublisher(Publisher):
    def __init__(self, settings: Settings):
        self._queue = settings.task_queue
        self._timeout_s = settings.publish_timeout_s
        self._pool = _BrokerPool(settings, limit=settings.worker_concurrency)

    def publish(self, message: TaskMessage) -> None:
        deadline = time.monotonic() + self._timeout_s
        try:
            broker = self._pool.acquire(self._timeout_s)
        except queue.Empty as exc:
            raise PublishError(f"no broker connection free within {self._timeout_s:g} s") from exc
        broker.begin_request(deadline)
        try:
            broker.enqueue(
                Message(
                    queue_name=self._queue,
                    actor_name=LIBRARY_TASK_NAME,
                    args=(),
                    kwargs=message.payload,
                    options={},
                    message_id=message.id,
                    message_timestamp=message.enqueued_at_ns // 1_000_000,
                )
            )
        except topology.TaskQueueMissing as exc:
            log.warning("task %s: no queue %r: answered 503", message.id, self._queue)
            raise unroutable(self._queue) from exc
        except topology.TaskExchangeMissing as exc:
            del broker.channel  # closed by the broker; the connection stays
            log.warning("task %s: no exchange %r: answered 503", message.id, exc.args[0])
            raise exchange_missing(exc.args[0]) from exc
        except Exception as exc:
            del broker.connection  # Dramatiq's own drop; a wait in it ends at the deadline
            log.warning("publish failed: %r", exc)
            raise PublishError(_describe(exc)) from exc
        finally:
            broker.end_request()
            self._pool.release(broker)

    def warm_up(self) -> None:
        try:
            broker = self._pool.acquire(self._timeout_s)
        except queue.Empty:
            return
        broker.begin_request(time.monotonic() + self._timeout_s)
        try:
            broker.declare_queue(self._queue, ensure=True)
        except topology.TaskQueueMissing:
            log.warning(
                "warm-up: no queue %r yet (the core declares it): /async answers 503 until then", self._queue
            )
        except Exception as exc:
            del broker.connection
            log.warning("warm-up: broker not reachable yet: %r", exc)
        finally:
            broker.end_request()
            self._pool.release(broker)

    def close(self) -> None:
        self._pool.close()


def _describe(exc: Exception) -> str:
    # Dramatiq's ConnectionClosed carries pika's error, its last attempt's, as its argument
    reason = exc.args[0] if isinstance(exc, ConnectionClosed) and exc.args else exc
    if isinstance(reason, pika.exceptions.NackError):
        return "broker refused the task (nack)"
    return f"broker unavailable or not confirming in time: {type(reason).__name__}: {reason}"


def create(settings: Settings) -> Publisher:
    return DramatiqPublisher(settings)
