"""The gateway's HTTP routes."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from .body import BodyError, check_sync_keys, parse_task_body, read_body, task_id_of
from .core_client import CoreTimeout, CoreUnreachable
from .publishers import PublishError
from .task import new_task_message

routes = Blueprint("gateway", __name__)


def _services():
    return current_app.extensions["offload_gateway"]


def _error(status: int, reason: str):
    return jsonify(error=reason), status


@routes.get("/healthz")
def healthz():
    return jsonify(status="ok", publisher=_services().settings.publisher)


def _request_body() -> bytes:
    settings = _services().settings
    return read_body(
        request.environ, request.content_length, settings.max_body_bytes, settings.body_read_timeout_s
    )


@routes.post("/sync")
def sync():
    try:
        raw = _request_body()
        check_sync_keys(parse_task_body(raw))
    except BodyError as exc:
        return _error(exc.status, str(exc))
    try:
        answer = _services().core.get().work(raw if raw.strip() else b"{}")
    except CoreTimeout as exc:
        return _error(504, str(exc))
    except CoreUnreachable as exc:  # CoreFailed too: "core failed the task: <the core's error>"
        return _error(502, str(exc))
    return Response(answer.body, status=200, content_type=answer.content_type)


def _task_message():
    """The task message of an /async or /noop request."""
    payload = parse_task_body(_request_body())
    return new_task_message(payload, task_id_of(payload))


@routes.post("/async")
def async_():
    try:
        message = _task_message()
    except BodyError as exc:
        return _error(exc.status, str(exc))
    try:
        _services().publisher.get().publish(message)
    except PublishError as exc:
        return _error(503, str(exc))
    return jsonify(id=message.id), 202


@routes.post("/noop")
def noop():
    """/async without the publish: the framework's own ceiling, for benchmarks."""
    try:
        message = _task_message()
    except BodyError as exc:
        return _error(exc.status, str(exc))
    return jsonify(id=message.id), 202
