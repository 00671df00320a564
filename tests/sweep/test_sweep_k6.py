"""The real k6 binary (.venv/bin/k6) runs k6/loadtest.js on loopback against a tiny local server:
env handling, checks, handleSummary (p(99), dropped_iterations) and the remote-run wrapper."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sweep_fakes import LocalRemote, wait_until

from offload_lab.loadgen import k6 as k6_mod
from offload_lab.paths import K6_SCRIPT
from offload_lab.plan.steps import PlannedStep

K6 = shutil.which("k6", path=str(Path(sys.executable).parent)) or shutil.which("k6")
assert K6, "k6 binary not installed: run scripts/install-deps.sh"


def step(mode="async", rate=5, duration_s=2, work_ms=250, index=1):
    return PlannedStep(
        index=index,
        mode=mode,
        rate=rate,
        duration_s=duration_s,
        pre_allocated_vus=5,
        max_vus=5,
        work_ms=work_ms,
        label=mode,
        request_timeout_s=2,
    )


def run_local(env, tmp_path):
    full = {**os.environ, **env}
    return subprocess.run(
        [K6, *k6_mod.k6_args(str(K6_SCRIPT))],
        env=full,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("mode,status", [("async", 202), ("sync", 200)])
def test_script_summary_and_checks(http_target, tmp_path, mode, status):
    summary_path = tmp_path / "summary.json"
    r = run_local(k6_mod.k6_env(step(mode), http_target.base_url, str(summary_path)), tmp_path)
    assert r.returncode == 0, r.stderr
    s = json.loads(summary_path.read_text())
    m = s["metrics"]
    assert "p(99)" in m["http_req_duration"]["values"]
    assert m["checks"]["values"]["fails"] == 0 and m["checks"]["values"]["passes"] >= 10
    assert m["http_req_failed"]["values"]["passes"] == 0  # passes = failed requests
    assert m["dropped_iterations"]["values"]["count"] == 0  # written explicitly when k6 leaves it out
    assert 10 <= m["iterations"]["values"]["count"] <= 11  # 5/s for 2 s
    assert s["offload"]["mode"] == mode and s["offload"]["expected_status"] == status
    scenario = s["options"] if "scenarios" in s.get("options", {}) else None
    assert scenario is None or "load" in scenario["scenarios"]
    paths = {p for p, _ in http_target.bodies}
    assert paths == {f"/{mode}"}
    body = json.loads(http_target.bodies[0][1])
    if mode == "async":  # async tasks carry the id the ledger checks (k6_mod.task_id_prefix)
        assert body.pop("id").startswith(k6_mod.task_id_prefix("run", step(mode)) + "-")
    assert body == {"work_ms": 250}


def test_wrong_status_fails_checks(http_target, tmp_path):
    http_target.status["/sync"] = 503
    summary_path = tmp_path / "summary.json"
    r = run_local(k6_mod.k6_env(step("sync"), http_target.base_url, str(summary_path)), tmp_path)
    assert r.returncode == 0, r.stderr
    m = json.loads(summary_path.read_text())["metrics"]
    assert m["checks"]["values"]["passes"] == 0 and m["checks"]["values"]["fails"] >= 10
    assert m["http_req_failed"]["values"]["passes"] >= 10


@pytest.mark.parametrize(
    "change, message",
    [({"MODE": "batch"}, "MODE must be sync or async"), ({"RATE": "0"}, "RATE must be a positive integer")],
)
def test_bad_env_stops_k6(http_target, tmp_path, change, message):
    env = {**k6_mod.k6_env(step(), http_target.base_url, str(tmp_path / "s.json")), **change}
    r = run_local(env, tmp_path)
    assert r.returncode != 0
    assert message in r.stdout + r.stderr
    assert not http_target.bodies


def test_remote_wrapper_runs_a_step(http_target, tmp_path, monkeypatch):
    monkeypatch.setattr(k6_mod, "REMOTE_BASE", str(tmp_path / "remote"))
    runner = k6_mod.RemoteK6(LocalRemote(), "run-1", http_target.base_url, k6_bin=K6)
    assert runner.version().startswith("k6 v")
    runner.prepare()
    assert (tmp_path / "remote-user/run-1/loadtest.js").is_file()
    summary = runner.run(step("async", index=3))
    assert summary["offload"]["rate"] == 5 and "p(99)" in summary["metrics"]["http_req_duration"]["values"]
    assert (tmp_path / "remote-user/run-1/03-async-5.summary.json").is_file()
    assert not (tmp_path / "remote-user/run-1/k6.pid").exists()
    runner.cleanup()
    assert not (tmp_path / "remote-user/run-1").exists()


def test_remote_wrapper_stop_ends_k6_early(http_target, tmp_path, monkeypatch):
    monkeypatch.setattr(k6_mod, "REMOTE_BASE", str(tmp_path / "remote"))
    runner = k6_mod.RemoteK6(LocalRemote(), "run-2", http_target.base_url, k6_bin=K6)
    runner.prepare()
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("summary", runner.run(step("async", duration_s=60))))
    start = time.monotonic()
    t.start()
    pid_file = tmp_path / "remote-user/run-2/k6.pid"
    assert wait_until(lambda: pid_file.exists() and http_target.bodies, timeout=10)
    runner.stop()
    t.join(20)
    assert not t.is_alive()
    assert time.monotonic() - start < 15  # not the 60 s of the step
    # k6 still wrote a summary on SIGINT
    assert box["summary"]["metrics"]["iterations"]["values"]["count"] < 300


def test_remote_wrapper_reports_k6_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(k6_mod, "REMOTE_BASE", str(tmp_path / "remote"))
    runner = k6_mod.RemoteK6(LocalRemote(), "run-3", "http://127.0.0.1:9", k6_bin=K6)
    runner.prepare()
    bad = PlannedStep(1, "async", 5, 1, 5, 5, 100, "async", {}, request_timeout_s=1)
    object.__setattr__(bad, "mode", "batch")
    with pytest.raises(k6_mod.K6Error, match="MODE must be sync or async"):
        runner.run(bad)
