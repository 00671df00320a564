"""The gateway under real gunicorn (gevent worker) on loopback, started the two documented ways."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
REPO = Path(__file__).resolve().parents[2]


def _start_gunicorn(args, cwd, env):
    process = subprocess.Popen(
        [GUNICORN, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return process


def _wait_healthy(base_url, process, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{process.stdout.read()}")
        try:
            return requests.get(f"{base_url}/healthz", timeout=1)
        except requests.ConnectionError:
            time.sleep(0.1)
    pytest.fail("gunicorn did not answer /healthz in time")


def _stop(process):
    process.terminate()
    try:
        return process.communicate(timeout=15)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[0]


@pytest.mark.parametrize(
    "config, cwd",
    [
        ("gateway/gunicorn.conf.py", REPO),  # from a checkout
        ("python:offload_gateway.gunicorn_conf", None),  # as installed, from anywhere
    ],
)
def test_gunicorn_gevent_serves_healthz_and_async(broker, task_queue, tmp_path, free_port, config, cwd):
    port = free_port
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env.update(
        HOME=str(tmp_path),
        AMQP_URL=broker.amqp_url,
        TASK_QUEUE=task_queue,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="1",
        GUNICORN_WORKER_CLASS="gevent",
    )
    process = _start_gunicorn(["-c", config, "offload_gateway.wsgi:app"], cwd=cwd or tmp_path, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        health = _wait_healthy(base_url, process)
        assert health.status_code == 200
        assert health.json()["publisher"] == "kombu_pool"
        ids = set()
        for n in range(5):
            response = requests.post(f"{base_url}/async", json={"n": n}, timeout=5)
            assert response.status_code == 202, response.text
            ids.add(response.json()["id"])
    finally:
        output = _stop(process)
    messages = broker.get_messages(task_queue, count=5)
    assert {json.loads(m.body)["id"] for m in messages} == ids
    assert "GeventWorker" in output or "gevent" in output, output
    assert not (tmp_path / ".gunicorn").exists(), "gunicorn created a control socket directory"
