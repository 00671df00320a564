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


@dataclass(frozen=True)
class TaskMessage:
    id: str
    body: bytes


def new_task_message(payload: dict, task_id: str | None = None) -> TaskMessage:
    """The message for one task: `task_id` when the client chose one, else a new uuid4."""
    task_id = task_id or str(uuid.uuid4())
    document = {"id": task_id, "enqueued_at_ns": time.time_ns(), "payload": payload}
    # allow_nan=False: body.py refuses NaN and Infinity; never send the core what it cannot read
    body = json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
    return TaskMessage(id=task_id, body=body)
