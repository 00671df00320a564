"""The gateway declares nothing. The core declares the topology (the task queue with its
dead-letter exchange and queue, and the ledger queue) when it connects, and the gateway's broker
user may only publish to the default exchange (docs/interfaces.md, "Broker users"). A task
published while the task queue is missing reaches no queue: published mandatory with confirms,
the broker returns it and the gateway answers 503.

The one question the gateway asks is passive, which needs no permission: does the task queue
exist? Dramatiq asks it, where it would declare the queue (publishers/dramatiq_rabbitmq.py).
"""

from __future__ import annotations

import pika
import pika.exceptions

NOT_FOUND = 404


class TaskQueueMissing(Exception):
    """The task queue does not exist (yet): the core declares it. Not an AMQP error, so library
    retry loops (Dramatiq's) let it through."""


def task_queue_exists(connection: pika.BlockingConnection, queue: str) -> bool:
    """A passive queue.declare, on a channel of its own: the broker answers a missing queue by
    closing the channel it was asked on (404 NOT_FOUND), which must not be a publishing one."""
    channel = connection.channel()
    try:
        channel.queue_declare(queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == NOT_FOUND:
            return False
        raise
    channel.close()
    return True
