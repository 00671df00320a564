"""/sync when the core fails the task (issue 22): a core 5xx becomes 502 with the core's error,
and the body's task_id and attempt, which the core draws its failures from, are checked and
forwarded. A fake core on loopback."""

import json

import pytest
from offload_gateway.core_client import MAX_CORE_ERROR_CHARS


@pytest.mark.parametrize("kind", ["transient", "permanent"])
def test_a_failed_task_is_a_502_with_the_cores_error(make_app, fake_core, kind):
    fake_core.status = 500
    fake_core.answer = json.dumps({"error": f"task failed ({kind})"}).encode()
    response = make_app(CORE_URL=fake_core.url).test_client().post("/sync", json={"work_ms": 1})
    assert response.status_code == 502
    assert response.get_json() == {"error": f"core failed the task: task failed ({kind})"}


def test_a_busy_core_is_a_failed_task_too(make_app, fake_core):
    fake_core.status = 503
    fake_core.answer = b'{"error": "1000 requests are being worked"}'
    response = make_app(CORE_URL=fake_core.url).test_client().post("/sync", json={})
    assert response.status_code == 502
    assert response.get_json() == {"error": "core failed the task: 1000 requests are being worked"}


@pytest.mark.parametrize("answer", [b"<html>oops</html>", b"[]", b'{"error": 3}', b'{"error": " "}', b""])
def test_a_5xx_without_a_readable_error_names_the_status(make_app, fake_core, answer):
    fake_core.status = 500
    fake_core.answer = answer
    response = make_app(CORE_URL=fake_core.url).test_client().post("/sync", json={})
    assert response.status_code == 502
    assert response.get_json() == {"error": "core failed the task: HTTP 500"}


def test_the_cores_error_is_cut(make_app, fake_core):
    fake_core.status = 500
    fake_core.answer = json.dumps({"error": "x" * 5000}).encode()
    response = make_app(CORE_URL=fake_core.url).test_client().post("/sync", json={})
    assert response.get_json() == {"error": "core failed the task: " + "x" * MAX_CORE_ERROR_CHARS}


def test_task_id_and_attempt_are_forwarded_as_sent(make_app, fake_core):
    client = make_app(CORE_URL=fake_core.url).test_client()
    body = b'{"work_ms": 5, "task_id": "run-7_a", "attempt": 3}'
    response = client.post("/sync", data=body, content_type="application/json")
    assert response.status_code == 200
    assert fake_core.requests == [body]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"task_id": ""}, "task_id must be a string"),
        ({"task_id": "a/b"}, "task_id must be a string"),
        ({"task_id": "x" * 65}, "task_id must be a string"),
        ({"task_id": 7}, "task_id must be a string"),
        ({"attempt": 0}, "attempt must be an integer between 1 and 1000000"),
        ({"attempt": -1}, "attempt must be an integer between 1 and 1000000"),
        ({"attempt": 1_000_001}, "attempt must be an integer between 1 and 1000000"),
        ({"attempt": 2.0}, "attempt must be an integer"),
        ({"attempt": "2"}, "attempt must be an integer"),
        ({"attempt": True}, "attempt must be an integer"),
    ],
)
def test_bad_task_id_or_attempt_is_refused_before_the_core(make_app, fake_core, body, message):
    response = make_app(CORE_URL=fake_core.url).test_client().post("/sync", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(message)
    assert fake_core.requests == []


def test_async_carries_task_id_and_attempt_untouched(make_app, fake_core):
    """Only /sync reads them: on /async the attempt is the broker's header, and the body's keys
    are the payload's."""
    client = make_app(CORE_URL=fake_core.url).test_client()
    response = client.post("/noop", json={"task_id": "", "attempt": 0})
    assert response.status_code == 202
