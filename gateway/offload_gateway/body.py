"""Validation of the JSON body that /sync and /async take (docs/interfaces.md, "Requests")."""

from __future__ import annotations

import json

MAX_WORK_MS = 60000


class InvalidBody(ValueError):
    """The request body is not a task the gateway accepts; the message says why."""


def parse_task_body(raw: bytes) -> dict:
    """The body as a dict. An empty body counts as `{}`."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidBody("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidBody("body must be a JSON object")
    if "work_ms" in body:
        _check_work_ms(body["work_ms"])
    return body


def _check_work_ms(work_ms: object) -> None:
    # bool is an int subclass: `true` is not a work time
    if not isinstance(work_ms, int) or isinstance(work_ms, bool):
        raise InvalidBody("work_ms must be an integer number of milliseconds")
    if not 0 <= work_ms <= MAX_WORK_MS:
        raise InvalidBody(f"work_ms must be between 0 and {MAX_WORK_MS}")
