"""Each publisher puts the task message on the real queue, with the agreed properties."""

import json
import time
import uuid

import pytest
from offload_gateway import topology

PUBLISHERS = ["kombu_pool", "pika_per_request", "pika_shared"]


@pytest.mark.parametrize("confirm", ["1", "0"])
@pytest.mark.parametrize("publisher", PUBLISHERS)
def test_async_publishes_the_task_message(make_app, broker, task_queue, publisher, confirm):
    client = make_app(PUBLISHER=publisher, PUBLISH_CONFIRM=confirm).test_client()
    before_ns = time.time_ns()
    response = client.post("/async", json={"work_ms": 7, "tag": publisher})
    assert response.status_code == 202, response.get_json()
    task_id = response.get_json()["id"]
    assert uuid.UUID(task_id).version == 4

    [message] = broker.get_messages(task_queue)
    document = json.loads(message.body)
    assert document["id"] == task_id
    assert document["payload"] == {"work_ms": 7, "tag": publisher}
    assert before_ns <= document["enqueued_at_ns"] <= time.time_ns()
    assert message.properties["message_id"] == task_id
    assert message.properties["content_type"] == "application/json"
    assert message.properties["delivery_mode"] == 2
    assert message.delivery_info["exchange"] == ""
    assert message.delivery_info["routing_key"] == task_queue


@pytest.mark.parametrize("publisher", PUBLISHERS)
def test_many_publishes_all_land(make_app, broker, task_queue, publisher):
    client = make_app(PUBLISHER=publisher).test_client()
    ids = {client.post("/async", json={"n": n}).get_json()["id"] for n in range(20)}
    messages = broker.get_messages(task_queue, count=20)
    assert {json.loads(m.body)["id"] for m in messages} == ids


@pytest.mark.parametrize("publisher", PUBLISHERS)
def test_the_queue_topology_is_declared(make_app, broker, task_queue, publisher):
    assert make_app(PUBLISHER=publisher).test_client().post("/async", json={}).status_code == 202
    queue = broker.queue(task_queue)
    assert queue["durable"] is True
    assert queue["arguments"] == {
        "x-dead-letter-exchange": "tasks.dlx",
        "x-dead-letter-routing-key": "tasks.dead",
    }
    exchange = broker.api("exchanges/%2F/tasks.dlx")
    assert (exchange["type"], exchange["durable"]) == ("direct", True)
    assert broker.queue("tasks.dead")["durable"] is True
    bindings = broker.api("exchanges/%2F/tasks.dlx/bindings/source")
    assert {(b["destination"], b["routing_key"]) for b in bindings} >= {("tasks.dead", "tasks.dead")}


@pytest.mark.parametrize(
    "publisher, declare_function",
    [
        ("kombu_pool", "declare_with_py_amqp"),
        ("pika_per_request", "declare_with_pika"),
        ("pika_shared", "declare_with_pika"),
    ],
)
def test_topology_is_declared_once_not_per_publish(make_app, monkeypatch, publisher, declare_function):
    calls = []
    real = getattr(topology, declare_function)
    monkeypatch.setattr(topology, declare_function, lambda *args: calls.append(args) or real(*args))
    client = make_app(PUBLISHER=publisher).test_client()
    for _ in range(5):
        assert client.post("/async", json={}).status_code == 202
    assert len(calls) == 1


@pytest.mark.parametrize("publisher", PUBLISHERS)
def test_a_task_that_reaches_no_queue_gets_503_and_the_queue_comes_back(
    make_app, broker, task_queue, publisher
):
    """Published mandatory with confirms: the broker returns a task that routes nowhere (here the
    queue was deleted after the gateway declared it) instead of dropping it after a 202."""
    client = make_app(PUBLISHER=publisher).test_client()
    assert client.post("/async", json={"n": 0}).status_code == 202
    broker.delete_queue(task_queue)

    response = client.post("/async", json={"n": 1})
    assert response.status_code == 503
    assert response.get_json() == {"error": f"broker could not route the task: no queue {task_queue!r}"}

    # the publisher declares the queue again, so the next task lands
    response = client.post("/async", json={"n": 2})
    assert response.status_code == 202, response.get_json()
    [message] = broker.get_messages(task_queue)
    assert json.loads(message.body)["payload"] == {"n": 2}
