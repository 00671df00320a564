"""The default publisher: producers from `kombu.pools`, acquired per request.

Each producer in the pool holds its own connection, so concurrent requests never share one.
The pool limit is the process's concurrency (kombu's default of 10 would make requests queue
for a producer). Topology is declared once per pooled connection.
"""

from __future__ import annotations

import logging
import time

import kombu
import kombu.pools

from .. import topology
from ..settings import Settings
from ..task import CONTENT_TYPE, PERSISTENT, TaskMessage
from .base import Publisher, PublishError

log = logging.getLogger(__name__)

# kept in kombu's per-connection `declared_entities`, which kombu empties whenever the
# connection is re-established or collected: exactly "declare once per connection"
_TOPOLOGY_MARK = "offload-gateway:topology"
# the least time left for a confirm, so a slow acquire still gets one try
_MIN_CONFIRM_WAIT_S = 0.05


class KombuPoolPublisher(Publisher):
    def __init__(self, settings: Settings):
        self._queue = settings.task_queue
        self._timeout_s = settings.publish_timeout_s
        kombu.pools.set_limit(settings.worker_concurrency)
        timeout = settings.publish_timeout_s
        self._connection = kombu.Connection(
            settings.amqp_url,
            connect_timeout=timeout,
            transport_options={
                "confirm_publish": settings.publish_confirm,
                # fail the request now instead of retrying the connect; the next request retries
                "max_retries": 0,
                "read_timeout": timeout,
                "write_timeout": timeout,
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
            self._declare_topology_once(connection)
            producer.publish(
                message.body,
                exchange="",
                routing_key=self._queue,
                message_id=message.id,
                content_type=CONTENT_TYPE,
                content_encoding="utf-8",
                delivery_mode=PERSISTENT,
                retry=False,
                confirm_timeout=max(deadline - time.monotonic(), _MIN_CONFIRM_WAIT_S),
            )
        except Exception as exc:
            # the connection's state is unknown after any failure: drop it without I/O so the
            # next request using this pool slot reconnects
            connection.collect()
            log.warning("publish failed: %r", exc)
            raise PublishError(_describe(exc)) from exc
        finally:
            producer.release()

    def warm_up(self) -> None:
        producer = self._producers.acquire(block=True, timeout=self._timeout_s)
        try:
            self._declare_topology_once(producer.__connection__)
        except Exception as exc:
            producer.__connection__.collect()
            log.warning("warm-up: broker not reachable yet: %r", exc)
        finally:
            producer.release()

    def _declare_topology_once(self, connection: kombu.Connection) -> None:
        if _TOPOLOGY_MARK in connection.declared_entities:
            return
        topology.declare_with_py_amqp(connection.default_channel, self._queue)
        connection.declared_entities.add(_TOPOLOGY_MARK)

    def close(self) -> None:
        # kombu.pools is a process-wide registry keyed by connection settings; reset empties it
        # so a later publisher with the same settings starts with fresh pools
        kombu.pools.reset()


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
