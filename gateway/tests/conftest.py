"""Fixtures: a real RabbitMQ (AMQP_URL / RABBITMQ_MGMT_URL from scripts/with-test-broker.sh),
a queue per test, declared as the core declares it, gateway apps and the gateway under real
gunicorn, both publishing as a user with the gateway's permissions only, a fake core."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit

import kombu
import pytest
import requests
from broker_users import render, role_topology
from offload_gateway import create_app
from offload_gateway.topology import task_exchange

REPO = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
# a user with the gateway's permissions on the test broker (the role's, for the role's user)
PUBLISHER_USER = "gw-test-publisher"
# every task queue of the gateway's tests is named gw-..., without a dot (unlike the dead-letter
# and ledger queues): the test user's permissions take this regex where the role has the task
# queue's escaped name
TEST_TASK_QUEUES = "gw-[A-Za-z0-9-]+"
_QUEUE_STANDIN = "TASKQUEUE"  # no character that regex_escape would change


def gateway_permissions_for_the_tests() -> dict[str, str]:
    """The role's gateway permissions, built for a task queue named like the tests' ones (write on
    their task exchanges only: no amq.default)."""
    gateway = render("offload_broker_users", offload_broker_task_queue=_QUEUE_STANDIN)["gateway"]
    return {
        permission: gateway[permission].replace(_QUEUE_STANDIN, TEST_TASK_QUEUES)
        for permission in ("configure", "write", "read")
    }


class Broker:
    """The test broker: amqp_url is its administrator's; publisher_url, a user with the gateway's
    permissions only (the gateway's apps use it)."""

    def __init__(self, amqp_url: str, mgmt_url: str, state_dir: str | None = None):
        self.amqp_url = amqp_url
        self.state_dir = state_dir  # scripts/test-broker.sh's; None: this process's environment
        mgmt = urlsplit(mgmt_url)
        self._mgmt_base = f"{mgmt.scheme}://{mgmt.hostname}:{mgmt.port}"
        self._mgmt_auth = (mgmt.username or "", mgmt.password or "")
        self.publisher_url = ""

    def api(self, path: str, method: str = "GET", body: dict | None = None):
        response = requests.request(
            method, f"{self._mgmt_base}/api/{path}", json=body, auth=self._mgmt_auth, timeout=5
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def add_publisher(self) -> None:
        """The user the gateway's apps publish as: the permissions the broker role gives the
        gateway (write on the task exchange, nothing else) for the tests' task queues, on this
        broker's vhost."""
        password = uuid.uuid4().hex
        vhost = urlsplit(self.amqp_url).path.lstrip("/") or "/"
        self.api(f"users/{PUBLISHER_USER}", "PUT", {"password": password, "tags": ""})
        permissions = gateway_permissions_for_the_tests()
        self.api(f"permissions/{quote(vhost, safe='')}/{PUBLISHER_USER}", "PUT", permissions)
        url = urlsplit(self.amqp_url)
        self.publisher_url = url._replace(
            netloc=f"{PUBLISHER_USER}:{password}@{url.hostname}:{url.port}"
        ).geturl()

    def remove_publisher(self) -> None:
        with contextlib.suppress(Exception):
            self.api(f"users/{PUBLISHER_USER}", "DELETE")

    def declare_as_the_core(self, task_queue: str) -> None:
        """The core's declarations (core-go/internal/topology), as its own user could make them:
        the gateway declares nothing. The dead-letter side first; the task queue classic; the
        task exchange, bound to the task queue."""
        names = role_topology()
        with kombu.Connection(self.amqp_url) as connection:
            channel = connection.channel()
            channel.exchange_declare(names.dead_letter_exchange, "direct", durable=True, auto_delete=False)
            channel.queue_declare(names.dead_letter_queue, durable=True, auto_delete=False)
            channel.queue_bind(names.dead_letter_queue, names.dead_letter_exchange, names.dead_letter_queue)
            channel.queue_declare(
                task_queue,
                durable=True,
                auto_delete=False,
                arguments={
                    "x-queue-type": "classic",
                    "x-dead-letter-exchange": names.dead_letter_exchange,
                    "x-dead-letter-routing-key": names.dead_letter_queue,
                },
            )
            self.declare_the_task_exchange(channel, task_queue)

    @staticmethod
    def declare_the_task_exchange(channel, task_queue: str) -> None:
        """The task exchange as the core declares it (direct, durable, the task queue's name) and
        the task queue bound to it by its name, on a channel of the caller's."""
        exchange = task_exchange(task_queue)
        channel.exchange_declare(exchange, "direct", durable=True, auto_delete=False)
        channel.queue_bind(task_queue, exchange, task_queue)

    def queue(self, name: str) -> dict:
        return self.api(f"queues/%2F/{quote(name, safe='')}")

    def queue_exists(self, name: str) -> bool:
        try:
            self.queue(name)
        except requests.HTTPError as exc:
            assert exc.response.status_code == 404, exc
            return False
        return True

    def get_messages(self, queue: str, count: int = 1, timeout_s: float = 5) -> list:
        """Take up to `count` messages off `queue` (acked), waiting up to timeout_s for them."""
        messages = []
        deadline = time.monotonic() + timeout_s
        with kombu.Connection(self.amqp_url) as connection:
            channel = connection.channel()
            while len(messages) < count and time.monotonic() < deadline:
                message = channel.basic_get(queue, no_ack=True)
                if message is None:
                    time.sleep(0.05)
                else:
                    messages.append(message)
        return messages

    def delete_queue(self, name: str) -> None:
        with kombu.Connection(self.amqp_url) as connection:
            connection.channel().queue_delete(name)

    def delete_exchange(self, name: str) -> None:
        with kombu.Connection(self.amqp_url) as connection:
            connection.channel().exchange_delete(name)

    def exchange_exists(self, name: str) -> bool:
        try:
            self.api(f"exchanges/%2F/{quote(name, safe='')}")
        except requests.HTTPError as exc:
            assert exc.response.status_code == 404, exc
            return False
        return True

    def delete_task_queue(self, name: str) -> None:
        """The task queue and its task exchange (cleanup)."""
        with contextlib.suppress(Exception):
            self.delete_queue(name)
        with contextlib.suppress(Exception):
            self.delete_exchange(task_exchange(name))

    def control(self, command: str) -> None:
        """scripts/test-broker.sh pause|resume for this broker's node."""
        env = dict(os.environ, OFFLOAD_TEST_BROKER_PORT=str(urlsplit(self.amqp_url).port))
        if self.state_dir:
            env["OFFLOAD_TEST_BROKER_DIR"] = self.state_dir
        subprocess.run([str(REPO / "scripts/test-broker.sh"), command], env=env, check=True, timeout=60)


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    amqp_url = os.environ.get("AMQP_URL")
    mgmt_url = os.environ.get("RABBITMQ_MGMT_URL")
    if not amqp_url or not mgmt_url:
        pytest.fail(
            "AMQP_URL and RABBITMQ_MGMT_URL are not set: the gateway tests need a real RabbitMQ. "
            "Run them under scripts/with-test-broker.sh (as `make unit` does), e.g. "
            "scripts/with-test-broker.sh .venv/bin/pytest gateway/tests",
            pytrace=False,
        )
    broker = Broker(amqp_url, mgmt_url)
    broker.add_publisher()
    yield broker
    broker.remove_publisher()


@pytest.fixture(scope="session")
def second_broker(broker: Broker) -> Iterator[Broker]:
    """A second RabbitMQ node, independent of the first (no cluster), for the failover tests:
    started by scripts/test-broker.sh on the first's ports + 1 and in its directory + "-2"
    (OFFLOAD_TEST_BROKER2_DIR, _PORT, _MGMT_PORT override them), stopped after the session."""
    first_port = urlsplit(broker.amqp_url).port
    first_mgmt_port = urlsplit(os.environ["RABBITMQ_MGMT_URL"]).port
    state_dir = os.environ.get("OFFLOAD_TEST_BROKER2_DIR") or (
        os.environ.get("OFFLOAD_TEST_BROKER_DIR", "/tmp/offload-test-broker") + "-2"
    )
    env = dict(
        os.environ,
        OFFLOAD_TEST_BROKER_DIR=state_dir,
        OFFLOAD_TEST_BROKER_PORT=os.environ.get("OFFLOAD_TEST_BROKER2_PORT") or str(first_port + 1),
        OFFLOAD_TEST_BROKER_MGMT_PORT=(
            os.environ.get("OFFLOAD_TEST_BROKER2_MGMT_PORT") or str(first_mgmt_port + 1)
        ),
    )
    script = str(REPO / "scripts/test-broker.sh")
    started = subprocess.run([script, "start"], env=env, capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        pytest.fail(f"the second test broker did not start: {started.stderr[-500:]}", pytrace=False)
    exported = dict(
        line.removeprefix("export ").split("=", 1)
        for line in started.stdout.splitlines()
        if line.startswith("export ")
    )
    second = Broker(exported["AMQP_URL"], exported["RABBITMQ_MGMT_URL"], state_dir=state_dir)
    second.add_publisher()
    yield second
    subprocess.run([script, "stop"], env=env, capture_output=True, timeout=120)


@pytest.fixture
def task_queue(broker: Broker) -> Iterator[str]:
    """A task queue of this test's own, declared as the core declares it."""
    name = f"gw-test-{uuid.uuid4().hex[:10]}"
    broker.declare_as_the_core(name)
    yield name
    # cleanup only; the broker may be down after a failed test
    broker.delete_task_queue(name)


@pytest.fixture
def make_app(broker: Broker, task_queue: str):
    """make_app(**settings) -> a Flask app on the test broker and this test's queue."""
    apps = []

    def make(**overrides: str):
        config = {
            "AMQP_URL": broker.publisher_url,
            "TASK_QUEUE": task_queue,
            "WORKER_CONCURRENCY": "10",
        }
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["offload_gateway"].close()


@pytest.fixture
def client(make_app):
    return make_app().test_client()


@pytest.fixture
def free_port() -> int:
    return free_loopback_port()


def free_loopback_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """The gateway under real gunicorn on a free loopback port, its settings from the environment
    as on the hosts: `env` is layered over this process's."""

    def __init__(self, home: Path, env: dict[str, str], config="gateway/gunicorn.conf.py", cwd=REPO):
        self.port = free_loopback_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        full_env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
        full_env.update(HOME=str(home), GUNICORN_BIND=f"127.0.0.1:{self.port}", GUNICORN_WORKERS="1")
        full_env.update(env)
        self.process = subprocess.Popen(
            [GUNICORN, "-c", config, "offload_gateway.wsgi:app"],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = ""
        self.health: requests.Response | None = None

    def wait_healthy(self, timeout_s: float = 20) -> requests.Response:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.process.stdout.read()}")
            try:
                return requests.get(f"{self.base_url}/healthz", timeout=1)
            # refused before the master listens; a timeout while the worker boots (the listen
            # socket takes the connection before a worker accepts it)
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        pytest.fail("gunicorn did not answer /healthz in time")

    def stop(self) -> str:
        """Stop gunicorn; its output (the log)."""
        if self.process.returncode is None:
            self.process.terminate()
            try:
                self.output = self.process.communicate(timeout=15)[0]
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.output = self.process.communicate()[0]
        return self.output


@pytest.fixture(scope="module")
def start_gateway(broker: Broker) -> Iterator:
    """start_gateway(home, env, config=..., cwd=...) -> a started Gunicorn, answering /healthz;
    each is stopped when the module's tests are done (or by its stop())."""
    started: list[Gunicorn] = []

    def start(home: Path, env: dict[str, str], **kwargs) -> Gunicorn:
        gateway = Gunicorn(home, {"AMQP_URL": broker.publisher_url, **env}, **kwargs)
        started.append(gateway)
        gateway.health = gateway.wait_healthy()
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


class FakeCore:
    """POST /work: waits `delay_s`, answers `status` with {"worked": true, "request": body}, or
    with `answer` (bytes) when set."""

    def __init__(self):
        self.delay_s = 0.0
        self.status = 200
        self.answer: bytes | None = None
        self.requests: list[bytes] = []
        core = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                core.requests.append(body)
                time.sleep(core.delay_s)
                answer = core.answer
                if answer is None:
                    answer = json.dumps({"worked": True, "request": json.loads(body or b"null")}).encode()
                self.send_response(core.status if self.path == "/work" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fake_core() -> Iterator[FakeCore]:
    core = FakeCore()
    yield core
    core.stop()


class Blackhole:
    """A TCP listener that accepts connections and never says anything: a hung broker."""

    def __init__(self):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._accepted.append(conn)

    def close(self):
        self._listener.close()
        for conn in self._accepted:
            conn.close()


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()
