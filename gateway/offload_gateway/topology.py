"""The queues and exchange the gateway and the core both declare, with identical arguments.

Declaring is idempotent, but the arguments must match the core's exactly or the broker
refuses the declaration (PRECONDITION_FAILED). Declaration order: dead-letter side first, so
the task queue never points at a missing exchange.
"""

from __future__ import annotations

DEAD_LETTER_EXCHANGE = "tasks.dlx"
DEAD_LETTER_QUEUE = "tasks.dead"
DEAD_LETTER_ROUTING_KEY = "tasks.dead"


def task_queue_arguments() -> dict[str, str]:
    return {
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": DEAD_LETTER_ROUTING_KEY,
    }


def declare_with_py_amqp(channel, task_queue: str) -> None:
    """Declare on a py-amqp channel (what kombu's pyamqp transport uses)."""
    channel.exchange_declare(exchange=DEAD_LETTER_EXCHANGE, type="direct", durable=True, auto_delete=False)
    channel.queue_declare(queue=DEAD_LETTER_QUEUE, durable=True, auto_delete=False)
    channel.queue_bind(
        queue=DEAD_LETTER_QUEUE, exchange=DEAD_LETTER_EXCHANGE, routing_key=DEAD_LETTER_ROUTING_KEY
    )
    channel.queue_declare(queue=task_queue, durable=True, auto_delete=False, arguments=task_queue_arguments())


def declare_with_pika(channel, task_queue: str) -> None:
    """Declare on a pika BlockingChannel."""
    channel.exchange_declare(exchange=DEAD_LETTER_EXCHANGE, exchange_type="direct", durable=True)
    channel.queue_declare(queue=DEAD_LETTER_QUEUE, durable=True)
    channel.queue_bind(
        queue=DEAD_LETTER_QUEUE, exchange=DEAD_LETTER_EXCHANGE, routing_key=DEAD_LETTER_ROUTING_KEY
    )
    channel.queue_declare(queue=task_queue, durable=True, arguments=task_queue_arguments())
