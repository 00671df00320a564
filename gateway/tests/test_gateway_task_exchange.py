"""Every publisher sends to the task exchange (named like the task queue, declared by the core),
the only exchange the gateway's broker user may write to. A missing task exchange (a broker the
core has not connected to yet) closes the publishing channel (404 NOT_FOUND): 503 within
PUBLISH_TIMEOUT_S, and 202 again once the core has declared it."""

import json
import time
import uuid

import pytest
from offload_gateway.settings import PUBLISHER_NAMES
from offload_gateway.topology import task_exchange

PUBLISH_TIMEOUT_S = 1.0


def _timed_post(client, body: dict):
    started = time.monotonic()
    response = client.post("/async", json=body)
    return response, time.monotonic() - started


def _task_of(message) -> dict:
    """The request body a task message carries, in any of the three formats."""
    body = json.loads(message.body)
    if isinstance(body, list):  # Celery: [args, kwargs, embed]
        return body[1]
    return body["kwargs"] if "actor_name" in body else body["payload"]


def test_the_task_exchange_has_the_task_queues_name():
    assert task_exchange("tasks") == "tasks"
    assert task_exchange("jobs+1") == "jobs+1"


@pytest.mark.parametrize("publisher", PUBLISHER_NAMES)
def test_a_missing_task_exchange_gets_503_until_the_core_declares_it(make_app, broker, task_queue, publisher):
    client = make_app(PUBLISHER=publisher, PUBLISH_TIMEOUT_S=str(PUBLISH_TIMEOUT_S)).test_client()
    assert client.post("/async", json={"n": 0}).status_code == 202
    [message] = broker.get_messages(task_queue)
    info = message.delivery_info
    assert (info["exchange"], info["routing_key"]) == (task_queue, task_queue)  # the task exchange

    broker.delete_exchange(task_exchange(task_queue))
    for n in (1, 2):
        response, elapsed = _timed_post(client, {"n": n})
        assert response.status_code == 503, response.get_json()
        assert response.get_json() == {
            "error": f"broker has no exchange {task_queue!r}: the core has not declared it (yet)"
        }
        assert elapsed < PUBLISH_TIMEOUT_S, elapsed
    assert not broker.exchange_exists(task_exchange(task_queue))  # the gateway declared nothing

    broker.declare_as_the_core(task_queue)
    for n in (3, 4):
        response = client.post("/async", json={"n": n})
        assert response.status_code == 202, response.get_json()
    assert [_task_of(m) for m in broker.get_messages(task_queue, count=2)] == [{"n": 3}, {"n": 4}]


@pytest.mark.parametrize("publisher", PUBLISHER_NAMES)
def test_a_broker_the_core_never_reached_gets_503_then_202_once_it_does(make_app, broker, publisher):
    """Neither the task queue nor its exchange exists: 503 (the broker returns the task, or closes
    the channel), nothing is declared; once the core has declared them, 202."""
    queue = f"gw-test-fresh-{uuid.uuid4().hex[:10]}"
    app = make_app(PUBLISHER=publisher, PUBLISH_TIMEOUT_S=str(PUBLISH_TIMEOUT_S), TASK_QUEUE=queue)
    client = app.test_client()
    try:
        for n in (1, 2):
            response, elapsed = _timed_post(client, {"n": n})
            assert response.status_code == 503, response.get_json()
            assert elapsed < PUBLISH_TIMEOUT_S, elapsed
        assert not broker.queue_exists(queue) and not broker.exchange_exists(task_exchange(queue))

        broker.declare_as_the_core(queue)
        response = client.post("/async", json={"n": 3})
        assert response.status_code == 202, response.get_json()
        assert [_task_of(m) for m in broker.get_messages(queue)] == [{"n": 3}]
    finally:
        broker.delete_task_queue(queue)
