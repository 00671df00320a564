"""The task message the gateway publishes and the core consumes.

See docs/design.md, "Task message and topology".
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

CONTENT_TYPE = "application/json"
PERSISTENT = 2  # AMQP delivery_mode
# the task's name where a library's format needs one: Celery's "task" header, Dramatiq's
# actor_name (docs/interfaces.md, "Task messages"; the core's consumer.LibraryTaskName)
LIBRARY_TASK_NAME = "offload.work"


@dataclass(frozen=True)
class TaskMessage:
    id: str
    body: bytes  # the gateway's own format, with the two fields below and the payload
    payload: dict
    enqueued_at_ns: int


def new_task_message(payload: dict, task_id: str | None = None) -> TaskMessage:
    """The message for one task: `task_id` when the client chose one, else a new uuid4."""
    task_id = task_id or str(uuid.uuid4())
    enqueued_at_ns = time.time_ns()
    document = {"id": task_id, "enqueued_at_ns": enqueued_at_ns, "payload": payload}
    # allow_nan=False: body.py refuses NaN and Infinity; never send the core what it cannot read
    body = json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
    return TaskMessage(id=task_id, body=body, payload=payload, enqueued_at_ns=enqueued_at_ns)
