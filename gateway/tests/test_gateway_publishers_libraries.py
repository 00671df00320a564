"""The library publishers, `celery` (and `celery_default_pool`) and `dramatiq`, on the real
broker: their wire formats, that they declare nothing (the core does), the publish bound, nacks.
End to end with the Go core: test_gateway_publishers_libraries_core.py."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.errors import ConnectionClosed
from offload_gateway.task import LIBRARY_TASK_NAME

REPO = Path(__file__).resolve().parents[2]
CORE_GO = REPO / "core-go"
GOLDEN = CORE_GO / "internal" / "consumer" / "testdata"
# OFFLOAD_WRITE_GOLDEN=1 rewrites the samples the Go tests publish from what the libraries send
WRITE_GOLDEN = os.environ.get("OFFLOAD_WRITE_GOLDEN") == "1"

CELERY = ["celery", "celery_default_pool"]
LIBRARY_PUBLISHERS = [*CELERY, "dramatiq"]
GOLDEN_PAYLOAD = {"work_ms": 5, "note": "golden"}


def _published(broker, task_queue, count=1):
    messages = broker.get_messages(task_queue, count=count)
    assert len(messages) == count, f"{len(messages)} of {count} messages on {task_queue}"
    return messages


def _timed_post(client, body=None):
    started = time.monotonic()
    response = client.post("/async", json=body or {})
    return response, time.monotonic() - started


# -------------------------------------------------------------------------------- formats


@pytest.mark.parametrize("confirm", ["1", "0"])
@pytest.mark.parametrize("publisher", CELERY)
def test_celery_sends_protocol_v2(make_app, broker, task_queue, publisher, confirm):
    client = make_app(PUBLISHER=publisher, PUBLISH_CONFIRM=confirm).test_client()
    before_ns = time.time_ns()
    response = client.post("/async", json={"work_ms": 7, "tag": publisher})
    assert response.status_code == 202, response.get_json()
    task_id = response.get_json()["id"]

    [message] = _published(broker, task_queue)
    assert message.headers["task"] == LIBRARY_TASK_NAME
    assert message.headers["id"] == task_id
    assert before_ns <= int(message.headers["enqueued_at_ns"]) <= time.time_ns()
    args, kwargs, embed = json.loads(message.body)
    assert (args, kwargs) == ([], {"work_ms": 7, "tag": publisher})
    assert set(embed) == {"callbacks", "errbacks", "chain", "chord"}
    assert message.properties["content_type"] == "application/json"
    assert message.properties["delivery_mode"] == 2
    info = message.delivery_info
    assert (info["exchange"], info["routing_key"]) == (task_queue, task_queue)  # the task exchange


@pytest.mark.parametrize("confirm", ["1", "0"])
def test_dramatiq_sends_its_message(make_app, broker, task_queue, confirm):
    client = make_app(PUBLISHER="dramatiq", PUBLISH_CONFIRM=confirm).test_client()
    before_ms = time.time_ns() // 1_000_000
    response = client.post("/async", json={"work_ms": 7, "tag": "dramatiq"})
    assert response.status_code == 202, response.get_json()
    task_id = response.get_json()["id"]

    [message] = _published(broker, task_queue)
    document = json.loads(message.body)
    assert document["message_id"] == task_id
    assert document["actor_name"] == LIBRARY_TASK_NAME
    assert document["queue_name"] == task_queue
    assert (document["args"], document["kwargs"]) == ([], {"work_ms": 7, "tag": "dramatiq"})
    assert before_ms <= document["message_timestamp"] <= time.time_ns() // 1_000_000
    assert message.properties["delivery_mode"] == 2
    info = message.delivery_info
    assert (info["exchange"], info["routing_key"]) == (task_queue, task_queue)  # the task exchange


@pytest.mark.parametrize("publisher", LIBRARY_PUBLISHERS)
def test_many_publishes_all_land(make_app, broker, task_queue, publisher):
    client = make_app(PUBLISHER=publisher).test_client()
    ids = {client.post("/async", json={"n": n}).get_json()["id"] for n in range(20)}
    messages = _published(broker, task_queue, count=20)
    if publisher == "dramatiq":
        assert {json.loads(m.body)["message_id"] for m in messages} == ids
    else:
        assert {m.headers["id"] for m in messages} == ids


def _normalised(library: str, message) -> dict:
    """A published message with what changes per message (ids, times, host, queue) replaced,
    in the form the Go tests read (core-go/internal/consumer/testdata)."""
    headers = dict(message.headers or {})
    properties = {k: v for k, v in message.properties.items() if k != "application_headers"}
    body = message.body if isinstance(message.body, str) else message.body.decode()  # py-amqp decodes utf-8
    if library == "celery":
        task_id = headers["id"]
        headers.update(
            id="TASK_ID", root_id="TASK_ID", enqueued_at_ns="1700000000123456789", origin="gen1@host"
        )
        properties.update(correlation_id="TASK_ID", message_id="TASK_ID", reply_to="REPLY_TO")
        body = body.replace(task_id, "TASK_ID")
    else:
        document = json.loads(body)
        body = (
            body.replace(document["message_id"], "TASK_ID")
            .replace(str(document["message_timestamp"]), "1700000000123")
            .replace(json.dumps(document["queue_name"]), '"tasks"')
        )
    return {"headers": headers, "properties": properties, "body": body}


@pytest.mark.parametrize(("library", "publisher"), [("celery", "celery"), ("dramatiq", "dramatiq")])
def test_the_go_tests_samples_are_what_the_library_sends(make_app, broker, task_queue, library, publisher):
    """The Go consumer's tests publish these samples (with fresh ids and times): they must stay
    byte for byte what the pinned library sends."""
    client = make_app(PUBLISHER=publisher).test_client()
    assert client.post("/async", json=GOLDEN_PAYLOAD).status_code == 202
    [message] = _published(broker, task_queue)
    sample = _normalised(library, message)
    path = GOLDEN / f"{library}.json"
    if WRITE_GOLDEN:
        path.write_text(json.dumps(sample, indent=2) + "\n")
    assert json.loads(path.read_text()) == sample, f"{path} is stale: rerun with OFFLOAD_WRITE_GOLDEN=1"


# -------------------------------------------------------------------------------- topology


@pytest.mark.parametrize("confirm", ["1", "0"])
@pytest.mark.parametrize("publisher", LIBRARY_PUBLISHERS)
def test_the_library_declares_nothing(make_app, broker, publisher, confirm):
    """Neither library declares the queue it sends to or its exchange (the core does; the
    gateway's user may only publish), nor a queue of its own (Dramatiq's `.XQ`, `.DQ`). Before
    the task queue and its exchange exist: 503 with confirms (no exchange: the broker closes the
    channel); Dramatiq checks the queue passively first, so even without confirms. Celery
    without confirms mostly answers 202 for a task the broker drops."""
    queue = f"gw-test-missing-{uuid.uuid4().hex[:10]}"
    client = make_app(PUBLISHER=publisher, PUBLISH_CONFIRM=confirm, TASK_QUEUE=queue).test_client()
    for _ in range(2):
        response, elapsed = _timed_post(client)
        if publisher == "dramatiq":
            assert response.status_code == 503, response.get_json()
            assert response.get_json() == {"error": f"broker could not route the task: no queue {queue!r}"}
        elif confirm == "1":
            assert response.status_code == 503, response.get_json()
            no_exchange = f"broker has no exchange {queue!r}: the core has not declared it (yet)"
            assert response.get_json() == {"error": no_exchange}
        else:
            # Celery without confirms: the task is lost, and the client told 202, unless the
            # broker's channel close (no exchange) reached the gateway before it answered: a race
            assert response.status_code in (202, 503), response.get_json()
            if response.status_code == 503:
                no_exchange = f"broker has no exchange {queue!r}: the core has not declared it (yet)"
                assert response.get_json() == {"error": no_exchange}
        assert elapsed < 1
    for name in (queue, f"{queue}.XQ", f"{queue}.DQ"):
        assert not broker.queue_exists(name), name
    assert not broker.exchange_exists(queue)


def test_stock_dramatiq_cannot_declare_the_shared_queue(broker, task_queue):
    """Why the dramatiq publisher does not let Dramatiq declare: its own declaration
    (dead-lettering to `<queue>.XQ`) is refused on the core's queue, even with every right."""
    stock = RabbitmqBroker(url=broker.amqp_url)
    try:
        with pytest.raises(ConnectionClosed, match="PRECONDITION_FAILED"):
            stock.declare_queue(task_queue, ensure=True)
    finally:
        stock.close()
        for name in (f"{task_queue}.XQ", f"{task_queue}.DQ"):
            with contextlib.suppress(Exception):
                broker.delete_queue(name)


@pytest.mark.parametrize("publisher", LIBRARY_PUBLISHERS)
def test_a_deleted_queue_gets_503_until_the_core_declares_it_again(make_app, broker, task_queue, publisher):
    """Published mandatory, as the other publishers: a task that reaches no queue gets 503 (for
    Dramatiq, after one return and a passive check, not its 6 attempts), and once the core
    declares the queue again the next one lands."""
    client = make_app(PUBLISHER=publisher).test_client()
    assert client.post("/async", json={"n": 0}).status_code == 202
    broker.delete_queue(task_queue)
    for n in (1, 2):
        response, elapsed = _timed_post(client, {"n": n})
        assert response.status_code == 503, response.get_json()
        assert response.get_json() == {"error": f"broker could not route the task: no queue {task_queue!r}"}
        assert elapsed < 1
    assert not broker.queue_exists(task_queue)

    broker.declare_as_the_core(task_queue)
    assert client.post("/async", json={"n": 3}).status_code == 202
    [message] = _published(broker, task_queue)
    body = json.loads(message.body)
    assert (body["kwargs"] if publisher == "dramatiq" else body[1]) == {"n": 3}


# -------------------------------------------------------------------------------- bounds


@pytest.mark.parametrize("publisher", LIBRARY_PUBLISHERS)
def test_unreachable_broker_gets_503_fast(make_app, free_port, publisher):
    client = make_app(PUBLISHER=publisher, AMQP_URL=f"amqp://u:p@127.0.0.1:{free_port}/").test_client()
    for _ in range(3):
        response, elapsed = _timed_post(client)
        assert response.status_code == 503
        assert response.get_json()["error"]
        assert elapsed < 1


@pytest.mark.parametrize("publisher", LIBRARY_PUBLISHERS)
def test_hung_broker_gets_503_within_the_publish_timeout(make_app, blackhole, publisher):
    """A broker that accepts the connection and never answers: neither library's retries (Celery's
    publish retry policy, Dramatiq's 6 enqueue attempts) may hold the request past the bound."""
    client = make_app(
        PUBLISHER=publisher, AMQP_URL=f"amqp://u:p@127.0.0.1:{blackhole.port}/", PUBLISH_TIMEOUT_S="0.3"
    ).test_client()
    for _ in range(2):
        response, elapsed = _timed_post(client)
        assert response.status_code == 503
        assert response.get_json()["error"]
        assert elapsed < 0.3 + 0.4


@pytest.mark.parametrize("publisher", LIBRARY_PUBLISHERS)
def test_warm_up_with_the_broker_down_does_not_raise(make_app, free_port, publisher):
    app = make_app(PUBLISHER=publisher, AMQP_URL=f"amqp://u:p@127.0.0.1:{free_port}/")
    app.extensions["offload_gateway"].warm_up()
    assert app.test_client().post("/async", json={}).status_code == 503


def test_broker_outage_and_recovery(make_app, broker, task_queue):
    """Broker stopped: 503 within the bound, no retry loop holding the request; back: 202 again
    without a restart. One stop/start cycle for all three (each takes seconds)."""
    clients = {name: make_app(PUBLISHER=name).test_client() for name in LIBRARY_PUBLISHERS}
    for name, client in clients.items():
        assert client.post("/async", json={}).status_code == 202, name

    broker.control("pause")
    try:
        for name, client in clients.items():
            for _ in range(2):
                response, elapsed = _timed_post(client)
                assert response.status_code == 503, (name, response.get_json())
                assert elapsed < 1.5, name
    finally:
        broker.control("resume")

    for name, client in clients.items():
        deadline = time.monotonic() + 15
        while True:
            response, elapsed = _timed_post(client)
            if response.status_code == 202:
                break
            assert elapsed < 1.5, name
            assert time.monotonic() < deadline, f"{name} did not recover: {response.get_json()}"
            time.sleep(0.2)
    assert len(_published(broker, task_queue, count=6)) == 6


def test_pool_sizes(make_app):
    services = [
        make_app(PUBLISHER=name, WORKER_CONCURRENCY="37").extensions["offload_gateway"] for name in CELERY
    ]
    assert [s.publisher.get().pool_limit for s in services] == [37, 10]  # 10: Celery's default


def test_celerys_default_pool_makes_the_eleventh_request_wait_then_503(make_app, task_queue):
    """With its 10 producers busy, a request waits for one, and gets 503 at PUBLISH_TIMEOUT_S."""
    app = make_app(PUBLISHER="celery_default_pool", WORKER_CONCURRENCY="1000", PUBLISH_TIMEOUT_S="0.3")
    client = app.test_client()
    assert client.post("/async", json={}).status_code == 202
    pool = app.extensions["offload_gateway"].publisher.get().producers
    held = [pool.acquire(block=True, timeout=1) for _ in range(10)]
    try:
        response, elapsed = _timed_post(client)
        assert response.status_code == 503
        assert "no producer free within 0.3 s (pool of 10)" in response.get_json()["error"]
        assert 0.3 <= elapsed < 0.3 + 0.4
    finally:
        for producer in held:
            producer.release()
    assert client.post("/async", json={}).status_code == 202


# -------------------------------------------------------------------------------- nacks


class _NackEverything:
    """A policy on the queue (max-length 0, overflow reject-publish): the broker nacks every
    publish to it, as it does when a queue is full."""

    def __init__(self, queue: str):
        mgmt = urlsplit(os.environ["RABBITMQ_MGMT_URL"])
        self._url = (
            f"{mgmt.scheme}://{mgmt.hostname}:{mgmt.port}/api/policies/%2F/{quote(queue, safe='')}-nack"
        )
        self._auth = (mgmt.username or "", mgmt.password or "")
        self._queue = queue

    def __enter__(self):
        definition = {"max-length": 0, "overflow": "reject-publish"}
        body = {"pattern": f"^{self._queue}$", "definition": definition, "apply-to": "queues", "priority": 99}
        requests.put(self._url, json=body, auth=self._auth, timeout=5).raise_for_status()
        return self

    def __exit__(self, *exc):
        requests.delete(self._url, auth=self._auth, timeout=5)


@pytest.mark.parametrize("publisher", LIBRARY_PUBLISHERS)
def test_a_nack_gets_503(make_app, broker, task_queue, publisher):
    client = make_app(PUBLISHER=publisher).test_client()
    assert client.post("/async", json={"n": 0}).status_code == 202
    assert len(_published(broker, task_queue)) == 1
    with _NackEverything(task_queue):
        deadline = time.monotonic() + 10
        while broker.queue(task_queue).get("policy") is None:
            assert time.monotonic() < deadline, "the policy did not apply"
            time.sleep(0.1)
        for _ in range(2):
            response, elapsed = _timed_post(client)
            assert response.status_code == 503, response.get_json()
            assert response.get_json()["error"] == "broker refused the task (nack)"
            assert elapsed < 1
    assert broker.queue(task_queue)["messages"] == 0
    response = client.post("/async", json={"n": 1})
    assert response.status_code == 202, response.get_json()
