"""The gateway declares nothing. The core declares the topology when it connects: the task queue
with its dead-letter exchange and queue, the ledger queue, and the task exchange, which has the
task queue's name and routes to the task queue only (core-go/internal/topology). Every publisher
sends to the task exchange with the task queue's name as the routing key, and the gateway's
broker user may publish there and nowhere else (docs/interfaces.md, "Broker users"): not to the
default exchange, which would reach any queue of the vhost (the ledger, the dead letters).

What the gateway may meet before the core has declared things (answered 503 either way, within
PUBLISH_TIMEOUT_S, and 202 again once the core has declared them):
- no task queue: a task published mandatory with confirms reaches no queue (the binding went
  with the queue), the broker returns it and the gateway answers 503;
- no task exchange (a broker the core has not connected to yet): the broker closes the
  publishing channel with 404 NOT_FOUND; the publisher drops that channel, or its connection,
  and the next request opens a new one.

The one question the gateway asks is passive, which needs no permission: does the task queue
exist? Dramatiq asks it, where it would declare the queue (publishers/dramatiq_rabbitmq.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pika is loaded only by the publishers that use it
    import pika

NOT_FOUND = 404


def task_exchange(task_queue: str) -> str:
    """The exchange tasks are published to: the task exchange has the task queue's name
    (RabbitMQ keeps exchange and queue names apart; the core's Names.TaskExchange)."""
    return task_queue


class TaskQueueMissing(Exception):
    """The task queue does not exist (yet): the core declares it. Not an AMQP error, so library
    retry loops (Dramatiq's) let it through."""


class TaskExchangeMissing(Exception):
    """The broker closed the channel because the task exchange does not exist (yet): the core
    declares it. Not an AMQP error, so library retry loops (Dramatiq's) let it through."""


def task_queue_exists(connection: pika.BlockingConnection, queue: str) -> bool:
    """A passive queue.declare, on a channel of its own: the broker answers a missing queue by
    closing the channel it was asked on (404 NOT_FOUND), which must not be a publishing one."""
    import pika.exceptions

    channel = connection.channel()
    try:
        channel.queue_declare(queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == NOT_FOUND:
            return False
        raise
    channel.close()
    return True
