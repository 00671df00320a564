"""The real k6 binary runs k6/loadtest.js with MODE=noop against a local stand-in: it posts
/noop, expects 202 and sends no task id (a noop request is never queued, so no ledger)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from offload_lab.loadgen import k6 as k6_mod
from offload_lab.paths import K6_SCRIPT
from offload_lab.plan.steps import PlannedStep

K6 = shutil.which("k6", path=str(Path(sys.executable).parent)) or shutil.which("k6")
assert K6, "k6 binary not installed: run scripts/install-deps.sh"


def run_k6(env, cwd):
    args = [K6, *k6_mod.k6_args(str(K6_SCRIPT))]
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_noop_posts_noop_and_expects_202(http_target, tmp_path):
    http_target.status["/noop"] = 202
    step = PlannedStep(1, "noop", 5, 2, 5, 5, 0, "noop", request_timeout_s=2)
    summary_path = tmp_path / "summary.json"
    env = {**os.environ, **k6_mod.k6_env(step, http_target.base_url, str(summary_path))}
    r = subprocess.run(
        [K6, *k6_mod.k6_args(str(K6_SCRIPT))],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["offload"]["expected_status"] == 202 and summary["offload"]["task_id_prefix"] is None
    assert summary["metrics"]["checks"]["values"]["fails"] == 0
    assert {p for p, _ in http_target.bodies} == {"/noop"}
    assert all(json.loads(body) == {"work_ms": 0} for _, body in http_target.bodies)

    http_target.status["/noop"] = 503  # a noop that does not answer 202 fails its checks
    r = subprocess.run(
        [K6, *k6_mod.k6_args(str(K6_SCRIPT))],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(summary_path.read_text())["metrics"]["checks"]["values"]["passes"] == 0
