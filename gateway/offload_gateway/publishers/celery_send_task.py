"""Publishers `celery` and `celery_default_pool`: Celery's `send_task`, as a team that moves work
off a Flask request path would write it, with the gateway's bounds.

The message is Celery's protocol v2 (task name and id in the headers, the body
[args, kwargs, embed]); the request body travels as the keyword arguments, and the enqueue time
as one more header, `enqueued_at_ns` (a decimal string), since Celery's headers carry no send
time. It goes to the task exchange (a direct exchange named like the task queue), given to
send_task explicitly: Celery would turn a direct exchange it takes from the queue into the default
exchange. Celery would declare the queue it sends to (kombu's maybe_declare): it declares nothing
here (`declare=[]`), since the core declares the task queue and the task exchange and the
gateway's broker user may only publish (topology.py).

Per request, as in `kombu_pool` (Celery publishes through kombu's pools): a producer is taken
from the pool within PUBLISH_TIMEOUT_S, then one basic.publish and, with confirms on, one round
trip for the confirm. `celery` sizes the pool (`broker_pool_limit`) to the process's
concurrency; `celery_default_pool` keeps Celery's default of 10, so requests beyond 10 at once
wait for a producer and get 503 if none frees up in time.

Celery's retry policy (task_publish_retry: 3 retries, each with a 4 s connect timeout) could hold
a request for many seconds: it is off, and kombu's connect retries are one try per broker of
AMQP_URL (Celery's broker_url failover list, kombu_pool.failover_options); a failed request
drops its connection and the next one on that pool slot reconnects, to the next broker if its
own is gone.
"""

from __future__ import annotations

import logging
import time

import amqp.exceptions
import kombu
import kombu.pools
from celery import Celery

from .. import topology
from ..settings import Settings
from ..task import LIBRARY_TASK_NAME, TaskMessage
from .base import Publisher, PublishError, closed_for_a_missing_exchange, exchange_missing, unroutable
from .kombu_pool import FAILOVER_STRATEGY, _drop_if_closed_by_broker, _Returns, failover_options

log = logging.getLogger(__name__)

# the core's consumer.CeleryEnqueuedAtHeader. Sent as a decimal string: py-amqp writes an integer
# beyond 32 bits with the field type "L", which the core's AMQP client (amqp091-go) cannot read,
# so the whole delivery would fail to decode and the core's channel close.
ENQUEUED_AT_HEADER = "enqueued_at_ns"
# the least time left for a confirm, so a slow acquire still gets one try (as kombu_pool)
_MIN_CONFIRM_WAIT_S = 0.05


class CelerySendTaskPublisher(Publisher):
    def __init__(self, settings: Settings, pool_limit: int | None):
        """pool_limit: Celery's broker_pool_limit; None keeps Celery's default."""
        self._timeout_s = settings.publish_timeout_s
        self._confirm = settings.publish_confirm
        # as the core declares them (never declared here: declare=[] below)
        self._task_queue = kombu.Queue(
            settings.task_queue,
            kombu.Exchange(topology.task_exchange(settings.task_queue), type="direct", durable=True),
            routing_key=settings.task_queue,
        )
        # a ";"-separated broker_url is Celery's failover list (kombu's, see failover_options)
        self._app = Celery("offload-gateway", broker=settings.amqp_url, set_as_current=False)
        failover = failover_options(settings)
        config = {
            "task_queues": [self._task_queue],
            "task_default_queue": settings.task_queue,
            "task_publish_retry": False,
            "broker_failover_strategy": FAILOVER_STRATEGY,
            "broker_connection_timeout": failover["connect_timeout"],
            "broker_transport_options": {
                "confirm_publish": settings.publish_confirm,
                **failover["transport_options"],
                "read_timeout": settings.publish_timeout_s,
                "write_timeout": settings.publish_timeout_s,
            },
        }
        if pool_limit is not None:
            config["broker_pool_limit"] = pool_limit
        self._app.conf.update(config)
        self.pool_limit = self._app.conf.broker_pool_limit
        # the producer and connection pools Celery's send_task would take (app.producer_pool,
        # app.pool), of broker_pool_limit each, but our own: Celery's live in kombu's
        # process-wide registry under one global limit, which any other kombu user may change
        # (kombu_pool does); a producer pool larger than its connection pool waits forever
        connections = self._app.connection_for_write().Pool(limit=self.pool_limit)
        self.producers = kombu.pools.ProducerPool(connections, limit=self.pool_limit)

    def publish(self, message: TaskMessage) -> None:
        deadline = time.monotonic() + self._timeout_s
        try:
            producer = self.producers.acquire(block=True, timeout=self._timeout_s)
        except Exception as exc:
            raise PublishError(
                f"no producer free within {self._timeout_s:g} s (pool of {self.pool_limit}): {exc!r}"
            ) from exc
        connection = producer.__connection__
        try:
            _drop_if_closed_by_broker(connection)
            returns = _Returns.on(producer.channel, self._confirm)
            self._app.send_task(
                LIBRARY_TASK_NAME,
                kwargs=message.payload,
                task_id=message.id,
                queue=self._task_queue.name,
                # explicit: without them Celery publishes to the default exchange (see above)
                exchange=self._task_queue.exchange.name,
                routing_key=self._task_queue.routing_key,
                producer=producer,
                headers={ENQUEUED_AT_HEADER: str(message.enqueued_at_ns)},
                declare=[],  # not None, which would make Celery declare the queue
                ignore_result=True,
                # as the other publishers: returned if unroutable; the id also as message_id
                mandatory=True,
                message_id=message.id,
                confirm_timeout=max(deadline - time.monotonic(), _MIN_CONFIRM_WAIT_S),
            )
            returned = returns.take(message.id)
        except Exception as exc:
            # the connection's state is unknown after any failure: drop it without I/O
            connection.collect()
            log.warning("publish failed: %r", exc)
            if closed_for_a_missing_exchange(exc):
                raise exchange_missing(self._task_queue.exchange.name) from exc
            raise PublishError(_describe(exc)) from exc
        finally:
            producer.release()
        if returned:
            log.warning("task %s reached no queue: answered 503", message.id)
            raise unroutable(self._task_queue.name)

    def warm_up(self) -> None:
        try:
            producer = self.producers.acquire(block=True, timeout=self._timeout_s)
        except Exception as exc:
            log.warning("warm-up: no producer: %r", exc)
            return
        try:
            producer.__connection__.default_channel  # noqa: B018 - the property connects and opens it
        except Exception as exc:
            producer.__connection__.collect()
            log.warning("warm-up: broker not reachable yet: %r", exc)
        finally:
            producer.release()

    def close(self) -> None:
        self.producers.force_close_all()
        self.producers.connections.force_close_all()


def _describe(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    cause: BaseException | None = exc
    while cause is not None:  # kombu re-raises py-amqp's errors as its own, without their text
        if isinstance(cause, amqp.exceptions.MessageNacked):
            return "broker refused the task (nack)"
        cause = cause.__cause__
    if "timed out" in str(exc) or isinstance(exc, TimeoutError):
        return f"broker did not confirm in time: {text}"
    return f"broker unavailable: {text}"


def create(settings: Settings) -> Publisher:
    if settings.publisher == "celery_default_pool":
        return CelerySendTaskPublisher(settings, pool_limit=None)
    return CelerySendTaskPublisher(settings, pool_limit=settings.worker_concurrency)
