"""The gateway under real gunicorn (gevent worker) on loopback, started the two documented ways."""

import json
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "config, cwd",
    [
        ("gateway/gunicorn.conf.py", REPO),  # from a checkout
        ("python:offload_gateway.gunicorn_conf", None),  # as installed, from anywhere
    ],
)
def test_gunicorn_gevent_serves_healthz_and_async(start_gateway, broker, task_queue, tmp_path, config, cwd):
    env = {"TASK_QUEUE": task_queue, "GUNICORN_WORKER_CLASS": "gevent"}
    gateway = start_gateway(tmp_path, env, config=config, cwd=cwd or tmp_path)
    base_url = gateway.base_url
    try:
        health = gateway.health
        assert health.status_code == 200
        assert health.json()["publisher"] == "pipelined"  # the default
        ids = set()
        for n in range(5):
            response = requests.post(f"{base_url}/async", json={"n": n}, timeout=5)
            assert response.status_code == 202, response.text
            ids.add(response.json()["id"])
    finally:
        output = gateway.stop()
    messages = broker.get_messages(task_queue, count=5)
    assert {json.loads(m.body)["id"] for m in messages} == ids
    assert "GeventWorker" in output or "gevent" in output, output
    assert not (tmp_path / ".gunicorn").exists(), "gunicorn created a control socket directory"
