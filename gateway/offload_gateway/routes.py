"""The gateway's HTTP routes."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from .body import InvalidBody, parse_task_body
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


@routes.post("/sync")
def sync():
    raw = request.get_data(cache=False)
    try:
        parse_task_body(raw)
    except InvalidBody as exc:
        return _error(400, str(exc))
    try:
        answer = _services().core.get().work(raw if raw.strip() else b"{}")
    except CoreTimeout as exc:
        return _error(504, str(exc))
    except CoreUnreachable as exc:
        return _error(502, str(exc))
    return Response(answer.body, status=200, content_type=answer.content_type)


@routes.post("/async")
def async_():
    try:
        payload = parse_task_body(request.get_data(cache=False))
    except InvalidBody as exc:
        return _error(400, str(exc))
    message = new_task_message(payload)
    try:
        _services().publisher.get().publish(message)
    except PublishError as exc:
        return _error(503, str(exc))
    return jsonify(id=message.id), 202
