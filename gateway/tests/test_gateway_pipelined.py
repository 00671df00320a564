"""PUBLISHER=pipelined on the real broker, in the app and under real gunicorn (gevent and
gthread): every 202 is the broker's ack of that request's own message, every refusal a 503
(nack, return, timeout, broker down), and a broker restart mid-load loses no accepted task."""

import contextlib
import gc
import json
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import kombu
import pytest
import requests
from offload_gateway.publishers.pipelined import NACKED

PIPELINED = {"PUBLISHER": "pipelined"}
# no keep-alive: gunicorn's gevent worker waits out open connections when it stops
CLOSE = {"Connection": "close"}
WORKERS = {
    "gevent": {"GUNICORN_WORKER_CLASS": "gevent"},
    "gthread": {"GUNICORN_WORKER_CLASS": "gthread", "GUNICORN_THREADS": "64"},
}


@pytest.fixture
def own_queue(broker):
    """declare(**arguments) -> the name of a queue of this test's own with those arguments, bound
    to its task exchange as the core binds the task queue."""
    names = []

    def declare(**arguments) -> str:
        name = f"gw-pipelined-{uuid.uuid4().hex[:10]}"
        names.append(name)
        with kombu.Connection(broker.amqp_url) as connection:
            channel = connection.channel()
            channel.queue_declare(name, durable=True, auto_delete=False, arguments=arguments)
            broker.declare_the_task_exchange(channel, name)
        return name

    yield declare
    for name in names:
        broker.delete_task_queue(name)


def _post_at_once(base_url: str, bodies: list[dict]) -> list[tuple[int, dict]]:
    """One request per body, all released together: (status, JSON answer) in the bodies' order."""
    barrier = threading.Barrier(len(bodies))

    def post(body: dict) -> tuple[int, dict]:
        barrier.wait(timeout=30)
        response = requests.post(f"{base_url}/async", json=body, headers=CLOSE, timeout=30)
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def _queued_ids(broker, queue: str, count: int) -> list[str]:
    """The task ids in the queue (taken off it), checking nothing more than `count` is there."""
    ids = [json.loads(m.body)["id"] for m in broker.get_messages(queue, count=count, timeout_s=10)]
    assert broker.get_messages(queue, timeout_s=0.2) == [], "more tasks in the queue than expected"
    return ids


def _stop_cleanly(gateway) -> None:
    gateway.health = None  # its keep-alive connection goes with it
    gc.collect()
    output = gateway.stop()
    assert "Traceback" not in output, output


@pytest.mark.parametrize("worker", WORKERS)
def test_200_concurrent_requests_each_get_202_and_each_task_is_queued(
    start_gateway, broker, task_queue, tmp_path, worker
):
    gateway = start_gateway(tmp_path, {**PIPELINED, **WORKERS[worker], "TASK_QUEUE": task_queue})
    assert gateway.health.json()["publisher"] == "pipelined"
    bodies = [{"id": f"task-{n}", "n": n} for n in range(200)]
    try:
        responses = _post_at_once(gateway.base_url, bodies)
    finally:
        _stop_cleanly(gateway)
    assert [status for status, _ in responses] == [202] * 200, responses
    assert [answer["id"] for _, answer in responses] == [b["id"] for b in bodies]
    assert sorted(_queued_ids(broker, task_queue, 200)) == sorted(b["id"] for b in bodies)


@pytest.mark.parametrize("worker", WORKERS)
def test_nacked_tasks_amid_acked_ones_get_503_and_only_they(
    start_gateway, broker, own_queue, tmp_path, worker
):
    """The queue refuses (reject-publish: basic.nack) any task that would take it over 100 kB:
    every 5th task is bigger than that, the others all fit. Sent all at once, acks and nacks
    interleave; a request settled by another's answer would show up here."""
    queue = own_queue(**{"x-max-length-bytes": 100_000, "x-overflow": "reject-publish"})
    env = {**PIPELINED, **WORKERS[worker], "TASK_QUEUE": queue, "MAX_BODY_BYTES": "300000"}
    gateway = start_gateway(tmp_path, env)
    bodies = [{"id": f"task-{n}", "pad": "x" * (120_000 if n % 5 == 0 else 10)} for n in range(200)]
    try:
        responses = _post_at_once(gateway.base_url, bodies)
    finally:
        _stop_cleanly(gateway)
    expected = [503 if n % 5 == 0 else 202 for n in range(200)]
    assert [status for status, _ in responses] == expected
    assert {answer["error"] for status, answer in responses if status == 503} == {NACKED}
    accepted = sorted(answer["id"] for status, answer in responses if status == 202)
    assert sorted(_queued_ids(broker, queue, 160)) == accepted


def test_a_full_queue_nacks_and_the_request_gets_503(make_app, broker, own_queue):
    queue = own_queue(**{"x-max-length": 0, "x-overflow": "reject-publish"})
    client = make_app(**PIPELINED, TASK_QUEUE=queue).test_client()
    for _ in range(3):  # the channel stays usable after a nack
        response = client.post("/async", json={})
        assert response.status_code == 503
        assert response.get_json() == {"error": NACKED}
    assert broker.get_messages(queue, timeout_s=0.3) == []


def test_a_task_that_reaches_no_queue_gets_503_and_nothing_is_declared(make_app, broker):
    """The task exchange is there, the task queue not (deleted with its binding): the broker
    returns the task."""
    missing = f"gw-pipelined-missing-{uuid.uuid4().hex[:10]}"
    with kombu.Connection(broker.amqp_url) as connection:
        connection.channel().exchange_declare(missing, "direct", durable=True, auto_delete=False)
    client = make_app(**PIPELINED, TASK_QUEUE=missing).test_client()
    try:
        for _ in range(2):
            response = client.post("/async", json={})
            assert response.status_code == 503
            assert response.get_json() == {"error": f"broker could not route the task: no queue {missing!r}"}
        with pytest.raises(requests.HTTPError, match="404"):
            broker.queue(missing)
    finally:
        broker.delete_exchange(missing)


def test_the_task_message_and_its_properties(make_app, broker, task_queue):
    client = make_app(**PIPELINED).test_client()
    before_ns = time.time_ns()
    response = client.post("/async", json={"work_ms": 7, "tag": "pipelined"})
    assert response.status_code == 202, response.get_json()
    task_id = response.get_json()["id"]
    [message] = broker.get_messages(task_queue)
    document = json.loads(message.body)
    assert document["id"] == task_id
    assert document["payload"] == {"work_ms": 7, "tag": "pipelined"}
    assert before_ns <= document["enqueued_at_ns"] <= time.time_ns()
    assert message.properties["message_id"] == task_id
    assert message.properties["content_type"] == "application/json"
    assert message.properties["delivery_mode"] == 2
    info = message.delivery_info
    assert (info["exchange"], info["routing_key"]) == (task_queue, task_queue)  # the task exchange


def test_without_confirms_tasks_are_published_without_waiting(make_app, broker, task_queue):
    client = make_app(**PIPELINED, PUBLISH_CONFIRM="0").test_client()
    ids = [client.post("/async", json={"n": n}).get_json()["id"] for n in range(20)]
    assert sorted(_queued_ids(broker, task_queue, 20)) == sorted(ids)


def _timed_post(client):
    started = time.monotonic()
    response = client.post("/async", json={})
    return response, time.monotonic() - started


def test_unreachable_broker_gets_503_fast(make_app, free_port):
    client = make_app(**PIPELINED, AMQP_URL=f"amqp://u:p@127.0.0.1:{free_port}/").test_client()
    for _ in range(3):
        response, elapsed = _timed_post(client)
        assert response.status_code == 503
        assert response.get_json()["error"].startswith("broker unavailable")
        assert elapsed < 1


def test_hung_broker_gets_503_within_the_publish_timeout(make_app, blackhole):
    app = make_app(**PIPELINED, AMQP_URL=f"amqp://u:p@127.0.0.1:{blackhole.port}/", PUBLISH_TIMEOUT_S="0.3")
    for _ in range(2):
        response, elapsed = _timed_post(app.test_client())
        assert response.status_code == 503
        assert elapsed < 0.3 + 0.4


def test_warm_up_with_the_broker_down_does_not_raise(make_app, free_port):
    app = make_app(**PIPELINED, AMQP_URL=f"amqp://u:p@127.0.0.1:{free_port}/")
    app.extensions["offload_gateway"].warm_up()
    assert app.test_client().post("/async", json={}).status_code == 503


class FreezingProxy:
    """A TCP proxy to the broker. freeze() silences the connections open at that moment (bytes
    are dropped both ways, the sockets stay open: a hung broker or a dead peer); later
    connections pass."""

    def __init__(self, target_port: int):
        self._target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: list[dict] = []
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        for connection in self._open:
            connection["frozen"] = True

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._target_port))
            connection = {"frozen": False}
            self._open.append(connection)
            self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target, connection), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, connection: dict) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if not connection["frozen"]:
                    target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            sock.close()


def test_a_connection_gone_silent_gets_503_in_time_and_is_replaced(make_app, broker, task_queue):
    """No answer at all since a task was sent, for PUBLISH_TIMEOUT_S: the connection is dropped,
    so the next request connects again instead of waiting on a dead one."""
    url = urlsplit(broker.publisher_url)
    proxy = FreezingProxy(url.port)
    try:
        proxied = url._replace(netloc=f"{url.username}:{url.password}@127.0.0.1:{proxy.port}").geturl()
        client = make_app(**PIPELINED, AMQP_URL=proxied, PUBLISH_TIMEOUT_S="0.5").test_client()
        first = client.post("/async", json={})
        assert first.status_code == 202, first.get_json()
        proxy.freeze()
        response, elapsed = _timed_post(client)
        assert response.status_code == 503
        assert response.get_json() == {"error": "broker did not confirm in time (0.5 s)"}
        assert elapsed < 0.5 + 0.4
        third = client.post("/async", json={})
        assert third.status_code == 202, third.get_json()
    finally:
        proxy.close()
    assert sorted(_queued_ids(broker, task_queue, 2)) == sorted(r.get_json()["id"] for r in (first, third))


def test_a_broker_restart_mid_load_loses_no_accepted_task(start_gateway, broker, task_queue, tmp_path):
    """Clients keep posting to a gevent and a gthread gateway while the broker stops and starts
    again: requests get 202 or 503, and every task answered 202 is in the queue afterwards."""
    gateways = {
        worker: start_gateway(tmp_path, {**PIPELINED, **env, "TASK_QUEUE": task_queue})
        for worker, env in WORKERS.items()
    }
    stop = threading.Event()
    outcomes: list[tuple[str, float, int | str, str]] = []  # worker, when, status, task id

    def post_until_stopped(worker: str, base_url: str) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                task_id = uuid.uuid4().hex
                try:
                    response = session.post(
                        f"{base_url}/async", json={"id": task_id}, headers=CLOSE, timeout=10
                    )
                    status = response.status_code
                except requests.RequestException as exc:
                    status = repr(exc)
                outcomes.append((worker, time.monotonic(), status, task_id))
                time.sleep(0.01)

    clients = [
        threading.Thread(target=post_until_stopped, args=(worker, gateway.base_url))
        for worker, gateway in gateways.items()
        for _ in range(4)
    ]
    for client in clients:
        client.start()
    try:
        time.sleep(1)
        paused_at = time.monotonic()
        broker.control("pause")
        time.sleep(1)
        broker.control("resume")
        resumed_at = time.monotonic()
        deadline = resumed_at + 20
        while time.monotonic() < deadline and not all(
            any(w == worker and t > resumed_at and s == 202 for w, t, s, _ in outcomes) for worker in gateways
        ):
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stop.set()
        for client in clients:
            client.join()
        for gateway in gateways.values():
            _stop_cleanly(gateway)

    assert {s for _, _, s, _ in outcomes} <= {202, 503}
    for worker in gateways:
        mine = [(t, s) for w, t, s, _ in outcomes if w == worker]
        assert any(s == 202 and t < paused_at for t, s in mine), f"{worker}: nothing accepted before"
        assert any(s == 503 and paused_at < t for t, s in mine), f"{worker}: no 503 while the broker was down"
        assert any(s == 202 and t > resumed_at for t, s in mine), f"{worker}: did not recover"
    accepted = {task_id for _, _, s, task_id in outcomes if s == 202}
    queued = {
        json.loads(m.body)["id"] for m in broker.get_messages(task_queue, count=len(outcomes), timeout_s=3)
    }
    assert accepted - queued == set(), "tasks answered 202 that are not in the queue"
