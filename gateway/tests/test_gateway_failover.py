"""Failover across brokers (AMQP_URL "a;b"), on two independent RabbitMQ nodes: every publisher
connects to the first broker that answers, moves on to the next when its connection is lost,
and never answers 202 for a task no broker confirmed."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections import defaultdict

import kombu
import pytest
from offload_gateway.settings import Settings, SettingsError

PUBLISHERS = [
    "kombu_pool",
    "celery",
    "celery_default_pool",
    "dramatiq",
    "pika_per_request",
    "pika_shared",
    "pipelined",
]
# pika_shared is not thread-safe on purpose (its module says why): one thread publishes through it
THREADS = {"pika_shared": 1}


def test_the_list_is_read_in_order_and_every_password_stays_hidden():
    urls = "amqp://u:first-secret@h1:5672/v ; amqps://u:second-secret@h2:5671/v"
    settings = Settings.from_env({"AMQP_URL": urls})
    assert settings.amqp_urls == ("amqp://u:first-secret@h1:5672/v", "amqps://u:second-secret@h2:5671/v")
    assert settings.public()["amqp"] == "amqp://h1:5672/v;amqps://h2:5671/v"
    for bad in (
        "amqp://u:first-secret@h1/;http://u:second-secret@h2/",
        "amqp://u:first-secret@h1/;;amqp://u:second-secret@h2/",
    ):
        with pytest.raises(SettingsError) as error:
            Settings.from_env({"AMQP_URL": bad})
        assert "secret" not in str(error.value)


def test_one_url_is_a_list_of_one():
    assert Settings.from_env({"AMQP_URL": "amqp://u:p@h/"}).amqp_urls == ("amqp://u:p@h/",)


@pytest.fixture
def both_nodes(broker, second_broker, task_queue):
    """The task queue on the second node too, declared as the core would (no cluster: each node
    has its own)."""
    second_broker.declare_as_the_core(task_queue)
    yield broker, second_broker
    second_broker.delete_task_queue(task_queue)


def test_a_stopped_first_broker_is_skipped(make_app, both_nodes, task_queue):
    first, second = both_nodes
    clients = {
        name: make_app(PUBLISHER=name, AMQP_URL=f"{second.publisher_url};{first.publisher_url}").test_client()
        for name in PUBLISHERS
    }
    second.control("pause")
    try:
        for name, client in clients.items():
            for _ in range(2):
                response = client.post("/async", json={})
                assert response.status_code == 202, (name, response.get_json())
    finally:
        second.control("resume")
    assert len(first.get_messages(task_queue, count=2 * len(PUBLISHERS) + 1, timeout_s=2)) == 2 * len(
        PUBLISHERS
    )


class CuttableProxy:
    """A TCP proxy in front of a broker; cut() resets every connection through it and stops
    listening: to its clients, the broker died (as a SIGKILLed node: a reset, then refused)."""

    def __init__(self, upstream_port: int):
        self._upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self._upstream)
            except OSError:
                return
            with self._lock:
                self._sockets += [client, upstream]
                if self._cut:  # accepted while cut() ran: dies with the rest
                    self._reset_all()
                    return
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)

    def cut(self) -> None:
        self._listener.close()
        with self._lock:
            self._cut = True
            self._reset_all()

    def _reset_all(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()


def _via(proxy_port: int, url: str) -> str:
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    return url.replace(f"@{host_port}/", f"@127.0.0.1:{proxy_port}/", 1)


class Load:
    """Publishers posting /async in threads until stopped; the id of every 202, by publisher,
    and when it came."""

    def __init__(self, clients: dict):
        self.accepted: dict[str, list[tuple[float, str]]] = defaultdict(list)
        self.refused: dict[str, int] = defaultdict(int)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._post, args=(name, client), daemon=True)
            for name, client in clients.items()
            for _ in range(THREADS.get(name, 3))
        ]

    def _post(self, name: str, client) -> None:
        while not self._stop.is_set():
            response = client.post("/async", json={})
            if response.status_code == 202:
                self.accepted[name].append((time.monotonic(), response.get_json()["id"]))
            else:
                assert response.status_code == 503, (name, response.status_code)
                self.refused[name] += 1
            time.sleep(0.01)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def accepted_after(self, name: str, t: float) -> int:
        return sum(1 for at, _ in list(self.accepted[name]) if at > t)


def _task_ids(broker, queue: str) -> set[str]:
    """The ids of every task on the queue (taken off it)."""
    with kombu.Connection(broker.amqp_url) as connection:
        count = connection.channel().queue_declare(queue, passive=True).message_count
    messages = broker.get_messages(queue, count=count, timeout_s=10)
    assert len(messages) == count
    return {_task_id(m) for m in messages}


def _task_id(message) -> str:
    """Dramatiq carries the id in its JSON body only; the others as message_id too."""
    return message.properties.get("message_id") or json.loads(message.body)["message_id"]


def test_a_broker_dying_mid_load_loses_no_accepted_task(make_app, both_nodes, task_queue):
    """Every publisher publishes to node A (through a proxy) with B next in its list; A dies under
    load (the proxy resets every connection and stops listening). Each publisher then publishes
    to B, and every task answered 202 is on A (confirmed before it died) or on B."""
    first, second = both_nodes
    proxy = CuttableProxy(int(second.publisher_url.rsplit(":", 1)[1].split("/")[0]))
    amqp_url = f"{_via(proxy.port, second.publisher_url)};{first.publisher_url}"
    clients = {name: make_app(PUBLISHER=name, AMQP_URL=amqp_url).test_client() for name in PUBLISHERS}
    with Load(clients) as load:
        deadline = time.monotonic() + 15
        while any(len(load.accepted[name]) < 5 for name in PUBLISHERS):
            assert time.monotonic() < deadline, {n: len(load.accepted[n]) for n in PUBLISHERS}
            time.sleep(0.05)
        proxy.cut()
        died_at = time.monotonic()
        deadline = died_at + 15
        while any(load.accepted_after(name, died_at + 0.5) < 5 for name in PUBLISHERS):
            assert time.monotonic() < deadline, {n: load.accepted_after(n, died_at) for n in PUBLISHERS}
            time.sleep(0.05)
    accepted = {task_id for entries in load.accepted.values() for _, task_id in entries}
    on_a = _task_ids(second, task_queue)
    on_b = _task_ids(first, task_queue)
    assert accepted - on_a - on_b == set(), "answered 202 but on no broker"
    for name in PUBLISHERS:
        late = {task_id for at, task_id in load.accepted[name] if at > died_at + 0.5}
        assert late and late <= on_b, name


def test_a_silent_first_broker_costs_a_share_of_the_publish_timeout(make_app, broker, blackhole):
    """A first broker that takes the TCP connection and never answers (a partition): each
    publisher gives it its share of PUBLISH_TIMEOUT_S, then publishes to the next one in time."""
    for name in PUBLISHERS:
        client = make_app(
            PUBLISHER=name,
            AMQP_URL=f"amqp://u:p@127.0.0.1:{blackhole.port}/;{broker.publisher_url}",
            PUBLISH_TIMEOUT_S="2",
        ).test_client()
        started = time.monotonic()
        response = client.post("/async", json={})
        elapsed = time.monotonic() - started
        assert response.status_code == 202, (name, response.get_json())
        assert 0.9 < elapsed < 2, (name, elapsed)
