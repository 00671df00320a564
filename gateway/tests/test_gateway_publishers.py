"""Each publisher puts the task message on the real queue, with the agreed properties."""

import json
import time
import uuid

import pytest

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
    assert message.delivery_info["exchange"] == task_queue  # the task exchange has its name
    assert message.delivery_info["routing_key"] == task_queue


@pytest.mark.parametrize("publisher", PUBLISHERS)
def test_many_publishes_all_land(make_app, broker, task_queue, publisher):
    client = make_app(PUBLISHER=publisher).test_client()
    ids = {client.post("/async", json={"n": n}).get_json()["id"] for n in range(20)}
    messages = broker.get_messages(task_queue, count=20)
    assert {json.loads(m.body)["id"] for m in messages} == ids


@pytest.mark.parametrize("confirm", ["1", "0"])
@pytest.mark.parametrize("publisher", PUBLISHERS)
def test_the_gateway_declares_nothing(make_app, broker, publisher, confirm):
    """The core declares the task queue and its exchange; the gateway's user may only publish.
    Before they exist: 503 with confirms (the broker closes the channel: no exchange), a lost task
    without; either way neither appears."""
    queue = f"gw-test-missing-{uuid.uuid4().hex[:10]}"
    client = make_app(PUBLISHER=publisher, PUBLISH_CONFIRM=confirm, TASK_QUEUE=queue).test_client()
    response = client.post("/async", json={})
    if confirm == "1":
        assert response.status_code == 503
        assert response.get_json() == {
            "error": f"broker has no exchange {queue!r}: the core has not declared it (yet)"
        }
    else:
        assert response.status_code == 202
    assert not broker.queue_exists(queue) and not broker.exchange_exists(queue)


@pytest.mark.parametrize("publisher", PUBLISHERS)
def test_a_task_that_reaches_no_queue_gets_503_until_the_core_declares_the_queue(
    make_app, broker, task_queue, publisher
):
    """Published mandatory with confirms: the broker returns a task that routes nowhere (here the
    queue was deleted) instead of dropping it after a 202. Once the core declares the queue again
    (when it reconnects), tasks land."""
    client = make_app(PUBLISHER=publisher).test_client()
    assert client.post("/async", json={"n": 0}).status_code == 202
    broker.delete_queue(task_queue)

    for n in (1, 2):
        response = client.post("/async", json={"n": n})
        assert response.status_code == 503
        assert response.get_json() == {"error": f"broker could not route the task: no queue {task_queue!r}"}
    assert not broker.queue_exists(task_queue)

    broker.declare_as_the_core(task_queue)
    response = client.post("/async", json={"n": 3})
    assert response.status_code == 202, response.get_json()
    [message] = broker.get_messages(task_queue)
    assert json.loads(message.body)["payload"] == {"n": 3}
