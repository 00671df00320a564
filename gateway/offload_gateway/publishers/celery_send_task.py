"""Publishers `celery` and `celery_default_pool`: Celery's `send_task`, as a team that moves work
off a Flask request path would write it, with the gateway's bounds.

The message is Celery's protocol v2 (task name and id in the headers, the body
[args, kwargs, embed]); the request body travels as the keyword arguments, and the enqueue time
as one more header, `enqueued_at_ns`, since Celery's headers carry no send time. The queue is
the shared task queue with its dead-letter arguments, declared through Celery's own kombu
declarations (with the dead-letter side first), once per pooled connection.

Per request, as in `kombu_pool` (Celery publishes through kombu's pools): a producer is taken
from the pool within PUBLISH_TIMEOUT_S, then one basic.publish and, with confirms on, one round
trip for the confirm. `celery` sizes the pool (`broker_pool_limit`) to the process's
concurrency; `celery_default_pool` keeps Celery's default of 10, so requests beyond 10 at once
wait for a producer and get 503 if none frees up in time.

Celery's retry policy (task_publish_retry: 3 retries, each with a 4 s connect timeout) could hold
a request for many seconds: it is off, and so are kombu's connect retries; a failed request
drops its connection and the next one on that pool slot reconnects.
"""

from __future__ import annotations

import logging
import time

import kombu
import kombu.common
import kombu.pools
from celery import Celery

from .. import topology
from ..settings import Settings
from ..task import LIBRARY_TASK_NAME, TaskMessage
from .base import Publisher, PublishError
from .kombu_pool import _drop_if_closed_by_broker

log = logging.getLogger(__name__)

ENQUEUED_AT_HEADER = "enqueued_at_ns"  # the core's consumer.CeleryEnqueuedAtHeader
# the least time left for a confirm, so a slow acquire still gets one try (as kombu_pool)
_MIN_CONFIRM_WAIT_S = 0.05


class CelerySendTaskPublisher(Publisher):
    def __init__(self, settings: Settings, pool_limit: int | None):
        """pool_limit: Celery's broker_pool_limit; None keeps Celery's default."""
        self._timeout_s = settings.publish_timeout_s
        self._task_queue = kombu.Queue(
            settings.task_queue,
            kombu.Exchange(""),  # the default exchange, as our other publishers: nothing to bind
            routing_key=settings.task_queue,
            durable=True,
            queue_arguments=topology.task_queue_arguments(),
        )
        self._dead_letter_queue = kombu.Queue(
            topology.DEAD_LETTER_QUEUE,
            kombu.Exchange(topology.DEAD_LETTER_EXCHANGE, type="direct", durable=True),
            routing_key=topology.DEAD_LETTER_ROUTING_KEY,
            durable=True,
        )
        self._app = Celery("offload-gateway", broker=settings.amqp_url, set_as_current=False)
        config = {
            "task_queues": [self._task_queue],
            "task_default_queue": settings.task_queue,
            "task_publish_retry": False,
            "broker_connection_timeout": settings.publish_timeout_s,
            "broker_transport_options": {
                "confirm_publish": settings.publish_confirm,
                "max_retries": 0,
                "read_timeout": settings.publish_timeout_s,
                "write_timeout": settings.publish_timeout_s,
            },
        }
        if pool_limit is not None:
            config["broker_pool_limit"] = pool_limit
        self._app.conf.update(config)
        self.pool_limit = self._app.conf.broker_pool_limit

    def publish(self, message: TaskMessage) -> None:
        deadline = time.monotonic() + self._timeout_s
        try:
            producer = self._app.producer_pool.acquire(block=True, timeout=self._timeout_s)
        except Exception as exc:
            raise PublishError(
                f"no producer free within {self._timeout_s:g} s (pool of {self.pool_limit}): {exc!r}"
            ) from exc
        connection = producer.__connection__
        try:
            _drop_if_closed_by_broker(connection)
            self._app.send_task(
                LIBRARY_TASK_NAME,
                kwargs=message.payload,
                task_id=message.id,
                queue=self._task_queue.name,
                producer=producer,
                headers={ENQUEUED_AT_HEADER: message.enqueued_at_ns},
                declare=[self._dead_letter_queue, self._task_queue],
                ignore_result=True,
                confirm_timeout=max(deadline - time.monotonic(), _MIN_CONFIRM_WAIT_S),
            )
        except Exception as exc:
            # the connection's state is unknown after any failure: drop it without I/O
            connection.collect()
            log.warning("publish failed: %r", exc)
            raise PublishError(_describe(exc)) from exc
        finally:
            producer.release()

    def warm_up(self) -> None:
        try:
            producer = self._app.producer_pool.acquire(block=True, timeout=self._timeout_s)
        except Exception as exc:
            log.warning("warm-up: no producer: %r", exc)
            return
        try:
            channel = producer.__connection__.default_channel
            for queue in (self._dead_letter_queue, self._task_queue):
                kombu.common.maybe_declare(queue, channel)
        except Exception as exc:
            producer.__connection__.collect()
            log.warning("warm-up: broker not reachable yet: %r", exc)
        finally:
            producer.release()

    def close(self) -> None:
        # Celery's pools live in kombu's process-wide registry (as kombu_pool's): closing them
        # without emptying it would leave closed pools there for the next publisher
        kombu.pools.reset()


def _describe(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if "Nack" in type(exc).__name__:
        return f"broker refused the task (nack): {text}"
    if "timed out" in str(exc) or isinstance(exc, TimeoutError):
        return f"broker did not confirm in time: {text}"
    return f"broker unavailable: {text}"


def create(settings: Settings) -> Publisher:
    if settings.publisher == "celery_default_pool":
        return CelerySendTaskPublisher(settings, pool_limit=None)
    return CelerySendTaskPublisher(settings, pool_limit=settings.worker_concurrency)
