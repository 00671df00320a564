"""/async with a client-chosen task id (`id` in the body), so a load generator can keep a ledger
of the ids the gateway accepted."""

import json
import uuid

import pytest


@pytest.mark.parametrize("task_id", ["a", "load-7_run3-000042", "Z" * 64, "0"])
def test_the_clients_id_is_the_task_id(make_app, broker, task_queue, task_id):
    client = make_app().test_client()
    response = client.post("/async", json={"id": task_id, "work_ms": 3})
    assert response.status_code == 202, response.get_json()
    assert response.get_json() == {"id": task_id}

    [message] = broker.get_messages(task_queue)
    document = json.loads(message.body)
    assert document["id"] == task_id
    assert message.properties["message_id"] == task_id
    # the body is carried along untouched, id included
    assert document["payload"] == {"id": task_id, "work_ms": 3}


def test_without_an_id_the_gateway_makes_one(make_app, broker, task_queue):
    response = make_app().test_client().post("/async", json={"work_ms": 3})
    assert response.status_code == 202
    assert uuid.UUID(response.get_json()["id"]).version == 4


@pytest.mark.parametrize(
    "task_id",
    ["", "x" * 65, "has space", "dot.ted", "slash/ed", "ünï", "a\n", 42, None, True, ["a"], {"a": 1}],
)
def test_a_bad_id_gets_400_and_nothing_is_published(make_app, broker, task_queue, task_id):
    client = make_app().test_client()
    response = client.post("/async", json={"id": task_id})
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "id must be a string of 1 to 64 characters from A-Z, a-z, 0-9, _ and -"
    }
    # published after the bad one on the same connection: the only message on the queue
    assert client.post("/async", json={"id": "good"}).status_code == 202
    messages = broker.get_messages(task_queue, count=2, timeout_s=0.5)
    assert [json.loads(m.body)["id"] for m in messages] == ["good"]


def test_sync_carries_an_id_along_unchecked(make_app, fake_core):
    """Only /async uses the id; /sync forwards the body as it is."""
    client = make_app(CORE_URL=fake_core.url).test_client()
    assert client.post("/sync", json={"id": "not a task id"}).status_code == 200
    assert json.loads(fake_core.requests[0]) == {"id": "not a task id"}
