"""The library publishers, `celery` and `dramatiq`, end to end on the real broker: 200 tasks
accepted, then completed by the real Go core; concurrent requests under gunicorn's gevent
worker."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

CORE_GO = Path(__file__).resolve().parents[2] / "core-go"


def _published(broker, task_queue, count=1):
    messages = broker.get_messages(task_queue, count=count)
    assert len(messages) == count, f"{len(messages)} of {count} messages on {task_queue}"
    return messages


# -------------------------------------------------------------------------------- the Go core


@pytest.fixture(scope="module")
def core_binary(tmp_path_factory) -> Path:
    """The core built from this checkout (GO, else go on PATH, else /usr/local/go/bin/go, as
    scripts/build-artifacts.sh finds it)."""
    go = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"
    binary = tmp_path_factory.mktemp("core") / "offload-core"
    subprocess.run(
        [go, "build", "-o", str(binary), "./cmd/core"],
        cwd=CORE_GO,
        env=dict(os.environ, CGO_ENABLED="0"),
        check=True,
        timeout=300,
    )
    return binary


@contextlib.contextmanager
def _go_core(binary: Path, broker, task_queue: str, port: int, log_path: Path):
    """The real core consuming task_queue (the shared dead-letter names, its ledger in
    `<task_queue>.done`, its log in log_path); yields its base URL once it consumes."""
    env = dict(
        os.environ,
        AMQP_URL=broker.amqp_url,
        TASK_QUEUE=task_queue,
        LEDGER_QUEUE=f"{task_queue}.done",
        HTTP_ADDR=f"127.0.0.1:{port}",
        CONNECTION_NAME=f"{task_queue}-core",
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(binary)], env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log_path.read_text()
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base_url}/healthz", timeout=1).json()["consumer"]["connected"]:
                    break
            assert time.monotonic() < deadline, f"the core did not start consuming:\n{log_path.read_text()}"
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=40)
        with contextlib.suppress(Exception):
            broker.delete_queue(f"{task_queue}.done")


@pytest.mark.parametrize("publisher", ["celery", "dramatiq"])
def test_200_tasks_accepted_then_completed_by_the_go_core(
    make_app, broker, task_queue, free_port, core_binary, tmp_path, publisher
):
    """Published in the library's format, worked by the real core: counted, timed from the
    message's own enqueue time, and in the core's ledger under the ids the gateway answered."""
    client = make_app(PUBLISHER=publisher).test_client()
    first_publish = time.monotonic()
    accepted = []
    for n in range(200):
        response = client.post("/async", json={"work_ms": 10, "n": n})
        assert response.status_code == 202, response.get_json()
        accepted.append(response.get_json()["id"])

    with _go_core(core_binary, broker, task_queue, free_port, tmp_path / "core.log") as core_url:
        deadline = time.monotonic() + 30
        while (stats := requests.get(f"{core_url}/stats", timeout=5).json())["completed"] < 200:
            assert time.monotonic() < deadline, stats
            time.sleep(0.1)
        waited_ms = (time.monotonic() - first_publish) * 1000
        records = [json.loads(m.body) for m in broker.get_messages(f"{task_queue}.done", count=200)]

    assert (stats["received"], stats["completed"], stats["dead_lettered"]) == (200, 200, 0), stats
    latency = stats["completion_latency_ms"]
    assert latency["count"] == 200
    # from the enqueue time in the message: at least the work, at most since the first publish
    assert 10 <= latency["p50"] <= latency["max"] <= waited_ms, latency
    assert sorted(r["task_id"] for r in records) == sorted(accepted)
    assert {r["outcome"] for r in records} == {"done"}


# -------------------------------------------------------------------------------- gevent


@pytest.mark.parametrize("publisher", ["celery", "dramatiq"])  # celery_default_pool: celery's code
def test_concurrent_requests_under_gunicorn_gevent(start_gateway, broker, task_queue, tmp_path, publisher):
    """Under the gateway's default worker (gevent: sockets and locks patched, a greenlet per
    connection), 50 requests at once all land: the pools hand out connections to greenlets.
    The publish timeout is 5 s, not the default 1 s: 50 connections opened at once on a loaded
    2-core machine once took longer than 1 s (a 503, which is the timeout working, not the pool)."""
    gateway = start_gateway(
        tmp_path,
        {
            "PUBLISHER": publisher,
            "TASK_QUEUE": task_queue,
            "GUNICORN_WORKER_CLASS": "gevent",
            "PUBLISH_TIMEOUT_S": "5",
        },
    )
    assert gateway.health.json()["publisher"] == publisher

    def post(n):
        return requests.post(f"{gateway.base_url}/async", json={"n": n}, timeout=10)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(post, range(50)))
    assert [r.status_code for r in responses] == [202] * 50, [
        r.text for r in responses if r.status_code != 202
    ]
    ids = {r.json()["id"] for r in responses}
    messages = _published(broker, task_queue, count=50)
    if publisher == "dramatiq":
        assert {json.loads(m.body)["message_id"] for m in messages} == ids
    else:
        assert {m.headers["id"] for m in messages} == ids
    assert "publish failed" not in gateway.stop()
