"""Helpers shared by the analysis tests (a uniquely named module, not conftest, so that other
parts' conftest files cannot shadow it)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

from offload_lab.records import read_step

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def copy_run(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(FIXTURES / name, target, ignore=shutil.ignore_patterns("report"))
    return target


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def current_step(path: Path) -> dict:
    """A step file as a dict of the current shape (offload_lab.records), to change and write
    back: the fixtures are of older shapes, which lack the sections tests add to them."""
    return read_step(path).to_dict()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def run_cli(*args: str | Path) -> subprocess.CompletedProcess:
    """`python -m offload_lab.analysis ...` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "offload_lab.analysis", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def k6_expected(step: dict) -> dict:
    """Derived figures computed here, independently of offload_lab/analysis/, straight from the k6 JSON."""
    m = step["k6"]["metrics"]
    iterations = m["iterations"]["values"]["count"]
    dropped = m["dropped_iterations"]["values"]["count"] if "dropped_iterations" in m else 0
    reqs = m["http_reqs"]["values"]["count"]
    failed = m["http_req_failed"]["values"]["passes"]
    dur = m["http_req_duration"]["values"]
    return {
        "attempted": iterations + dropped,
        "dropped": dropped,
        "drop_rate_pct": 100 * dropped / (iterations + dropped),
        "successes": reqs - failed,
        "failed": failed,
        "throughput_rps": (reqs - failed) / step["step"]["duration_s"],
        "error_rate_pct": 100 * failed / reqs,
        "latency_avg_ms": dur["avg"],
        "latency_p95_ms": dur["p(95)"],
        "latency_p99_ms": dur["p(99)"],
        "latency_max_ms": dur["max"],
    }
