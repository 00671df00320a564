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


def new_task_message(payload: dict) -> TaskMessage:
    task_id = str(uuid.uuid4())
    document = {"id": task_id, "enqueued_at_ns": time.time_ns(), "payload": payload}
    return TaskMessage(id=task_id, body=json.dumps(document, separators=(",", ":")).encode())
