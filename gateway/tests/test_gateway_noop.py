"""POST /noop: /async's parsing, checks and answers without the publish (the framework's
ceiling in benchmarks)."""

import pytest
import requests

# one of each way /async refuses a body (test_gateway_requests.py has them all)
BAD_BODIES = [
    b"{not json",
    b"[1, 2]",
    b'{"work_ms": "10"}',
    b'{"work_ms": 60001}',
    b'{"x": NaN}',
    b"[" * 5000,
    b'{"id": "no spaces allowed"}',
    b'{"id": ""}',
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_noop_refuses_a_body_exactly_as_async_does(client, body):
    noop = client.post("/noop", data=body, content_type="application/json")
    async_ = client.post("/async", data=body, content_type="application/json")
    assert noop.status_code == async_.status_code == 400
    assert noop.get_json() == async_.get_json()


def test_noop_refuses_an_oversized_body_as_async_does(make_app):
    client = make_app(MAX_BODY_BYTES="64").test_client()
    body = b'{"pad": "' + b"x" * 100 + b'"}'
    for path in ("/noop", "/async"):
        response = client.post(path, data=body, content_type="application/json")
        assert (response.status_code, response.get_json()) == (413, {"error": "request body too large"})


def test_noop_answers_202_with_the_task_id_and_publishes_nothing(client, broker, task_queue):
    response = client.post("/noop", json={"id": "chosen-id", "work_ms": 5})
    assert response.status_code == 202
    assert response.get_json() == {"id": "chosen-id"}
    made_up = client.post("/noop", json={})
    assert made_up.status_code == 202 and len(made_up.get_json()["id"]) == 36
    assert broker.get_messages(task_queue, timeout_s=0.5) == []


def test_noop_needs_no_broker(make_app, free_port):
    client = make_app(AMQP_URL=f"amqp://u:p@127.0.0.1:{free_port}/").test_client()
    assert client.post("/noop", json={}).status_code == 202
    assert client.post("/async", json={}).status_code == 503


def test_noop_only_takes_post(client):
    response = client.get("/noop")
    assert response.status_code == 405
    assert response.get_json() == {"error": "method not allowed"}


def test_noop_under_gunicorn(start_gateway, broker, task_queue, tmp_path):
    gateway = start_gateway(tmp_path, {"TASK_QUEUE": task_queue, "GUNICORN_WORKER_CLASS": "gevent"})
    try:
        response = requests.post(f"{gateway.base_url}/noop", json={"n": 1}, timeout=5)
        assert response.status_code == 202, response.text
        assert set(response.json()) == {"id"}
    finally:
        gateway.stop()
    assert broker.get_messages(task_queue, timeout_s=0.5) == []
