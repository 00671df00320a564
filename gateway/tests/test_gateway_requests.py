"""Input validation and HTTP errors: every error answers JSON with a reason."""

import json

import pytest
from offload_gateway.body import MAX_NESTING


def _nested_lists(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


ENDPOINTS = ["/sync", "/async"]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "body, reason",
    [
        (b"{not json", "body is not valid JSON"),
        (b"\xff\xfe", "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b'"text"', "body must be a JSON object"),
        (b'{"work_ms": "10"}', "work_ms must be an integer number of milliseconds"),
        (b'{"work_ms": 1.5}', "work_ms must be an integer number of milliseconds"),
        (b'{"work_ms": true}', "work_ms must be an integer number of milliseconds"),
        (b'{"work_ms": -1}', "work_ms must be between 0 and 60000"),
        (b'{"work_ms": 60001}', "work_ms must be between 0 and 60000"),
        # Python's json takes these; JSON (and the core) does not
        (b'{"x": NaN}', "body is not valid JSON: NaN is not a JSON number"),
        (b'{"x": Infinity}', "body is not valid JSON: Infinity is not a JSON number"),
        (b'{"x": [-Infinity]}', "body is not valid JSON: -Infinity is not a JSON number"),
        (b'{"x": 1e400}', "body is not valid JSON: 1e400 is out of range"),
        (b"[" * 5000, "body is nested more than 64 levels deep"),
        (b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "body is nested more than 64 levels deep"),
        (json.dumps({"x": _nested_lists(MAX_NESTING)}).encode(), "body is nested more than 64 levels deep"),
    ],
)
def test_bad_bodies_get_400_with_a_reason(client, path, body, reason):
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": reason}


@pytest.mark.parametrize(
    "payload",
    [
        {"x": "[[[[" * 100 + "{{{{" * 100},  # brackets inside strings do not nest
        {"x": '\\"[[[[' * 100},  # nor after escaped quotes and backslashes
        {"x": [[]] * 200},  # many brackets, shallow
        {"x": 1e300, "y": -0.0},
        {"x": _nested_lists(MAX_NESTING - 1)},  # the object and its lists: MAX_NESTING deep
    ],
)
def test_bodies_near_the_limits_are_accepted(client, broker, task_queue, payload):
    response = client.post("/async", json=payload)
    assert response.status_code == 202, response.get_json()
    [message] = broker.get_messages(task_queue)
    assert json.loads(message.body)["payload"] == payload


@pytest.mark.parametrize("path", ENDPOINTS)
def test_oversized_body_gets_413(make_app, path):
    client = make_app(MAX_BODY_BYTES="64").test_client()
    response = client.post(path, data=b'{"pad": "' + b"x" * 100 + b'"}', content_type="application/json")
    assert response.status_code == 413
    assert response.get_json() == {"error": "request body too large"}


@pytest.mark.parametrize("path", ENDPOINTS)
def test_wrong_method_gets_405(client, path):
    response = client.get(path)
    assert response.status_code == 405
    assert response.get_json() == {"error": "method not allowed"}
    assert "POST" in response.headers["Allow"]


def test_unknown_path_gets_404(client):
    response = client.post("/nope", json={})
    assert response.status_code == 404
    assert response.get_json() == {"error": "not found"}


def test_healthz_is_cheap_and_does_not_touch_the_broker(make_app):
    client = make_app(AMQP_URL="amqp://u:p@127.0.0.1:9/").test_client()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "publisher": "pipelined"}
