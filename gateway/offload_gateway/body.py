"""The request body /sync and /async take: read with bounds on size and time, then validated
(docs/interfaces.md, "Requests")."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import accumulate

MAX_WORK_MS = 60000
# /sync's `attempt`: the client's attempt number, which the core draws its failures from
MAX_ATTEMPT = 1_000_000
# deeper JSON is refused before parsing: Python's parser would hit its recursion limit (a 500)
MAX_NESTING = 64
TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class BodyError(Exception):
    """The request body is not one the gateway takes; `status` is the HTTP answer, the message
    says why."""

    status = 400


class InvalidBody(BodyError):
    status = 400


class BodyTooLarge(BodyError):
    status = 413

    def __init__(self):
        super().__init__("request body too large")


class BodyNotReceived(BodyError):
    """The client stopped sending its body; the connection cannot be reused."""

    status = 408


def read_body(environ: dict, content_length: int | None, max_bytes: int, timeout_s: float) -> bytes:
    """The raw body, at most `max_bytes` (else BodyTooLarge), each wait for more of it bounded by
    `timeout_s` (else BodyNotReceived). `content_length` is None for a chunked body.

    The bound is a timeout on the client socket while reading (gunicorn puts the socket in
    `gunicorn.socket`; the sync, gthread and gevent workers all block on it here), so a client
    that announces a body and never sends it frees its worker slot. A read that failed leaves
    gunicorn's body marked failed, and gunicorn then closes the connection after the answer."""
    if content_length is not None and content_length > max_bytes:
        raise BodyTooLarge()
    # without Content-Length a server that does not end the stream itself has no body to read
    if content_length is None and not environ.get("wsgi.input_terminated"):
        return b""
    wanted = max_bytes + 1 if content_length is None else content_length
    try:
        with _socket_timeout(environ.get("gunicorn.socket"), timeout_s):
            raw = environ["wsgi.input"].read(wanted)
    except TimeoutError:
        raise BodyNotReceived(f"request body not received within {timeout_s:g} s") from None
    except Exception:  # noqa: BLE001 - the server's errors for a broken body (bad chunk, EOF)
        raise InvalidBody("request body is incomplete or malformed") from None
    if len(raw) > max_bytes:
        raise BodyTooLarge()
    if content_length is not None and len(raw) < content_length:
        raise InvalidBody("request body is shorter than its Content-Length")
    return raw


@contextmanager
def _socket_timeout(sock, timeout_s: float) -> Iterator[None]:
    if sock is None:  # not under gunicorn (Flask's test client)
        yield
        return
    previous = sock.gettimeout()
    sock.settimeout(timeout_s)
    try:
        yield
    finally:
        sock.settimeout(previous)


def parse_task_body(raw: bytes) -> dict:
    """The body as a dict. An empty body counts as `{}`."""
    if not raw.strip():
        return {}
    # a cheap bound first: the depth is at most the number of opening brackets
    if raw.count(b"[") + raw.count(b"{") > MAX_NESTING and _nesting(raw) > MAX_NESTING:
        raise InvalidBody(f"body is nested more than {MAX_NESTING} levels deep")
    try:
        body = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except InvalidBody:
        raise
    except ValueError:
        raise InvalidBody("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidBody("body must be a JSON object")
    if "work_ms" in body:
        _check_work_ms(body["work_ms"])
    return body


def task_id_of(body: dict) -> str | None:
    """The client's task id (`id` in the /async body), checked; None when absent."""
    if "id" not in body:
        return None
    task_id = body["id"]
    if not isinstance(task_id, str) or not TASK_ID.fullmatch(task_id):
        raise InvalidBody("id must be a string of 1 to 64 characters from A-Z, a-z, 0-9, _ and -")
    return task_id


def check_sync_keys(body: dict) -> None:
    """The /sync body's `task_id` and `attempt`, when present: the core draws a task's failures
    from them (docs/interfaces.md, "Requests"); the body is forwarded as it is."""
    if "task_id" in body:
        task_id = body["task_id"]
        if not isinstance(task_id, str) or not TASK_ID.fullmatch(task_id):
            raise InvalidBody("task_id must be a string of 1 to 64 characters from A-Z, a-z, 0-9, _ and -")
    if "attempt" in body:
        attempt = body["attempt"]
        if not isinstance(attempt, int) or isinstance(attempt, bool) or not 1 <= attempt <= MAX_ATTEMPT:
            raise InvalidBody(f"attempt must be an integer between 1 and {MAX_ATTEMPT}")


def _nesting(raw: bytes) -> int:
    """How deep brackets nest outside JSON strings."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


def _refuse_constant(name: str):
    # Python's json reads NaN, Infinity and -Infinity; JSON has no such values and the core
    # would dead-letter the task as not JSON
    raise InvalidBody(f"body is not valid JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: Python would turn it into Infinity
        raise InvalidBody(f"body is not valid JSON: {text[:40]} is out of range")
    return value


def _check_work_ms(work_ms: object) -> None:
    # bool is an int subclass: `true` is not a work time
    if not isinstance(work_ms, int) or isinstance(work_ms, bool):
        raise InvalidBody("work_ms must be an integer number of milliseconds")
    if not 0 <= work_ms <= MAX_WORK_MS:
        raise InvalidBody(f"work_ms must be between 0 and {MAX_WORK_MS}")
