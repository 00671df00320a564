"""The published reproduction of the original study (docs/results/seed, `fab sweep --spec seed
--repeat 3`): one run from a clean commit, tracked, on the default hosts (RabbitMQ 4), every
point three times, and the README's seed block what the committed data give today
(offload_lab/analysis/seed_table.py)."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from offload_lab.analysis.load import load_run

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "docs" / "results" / "seed"


@pytest.fixture(scope="module")
def run():
    return load_run(SEED)


def test_the_run_is_tracked_from_a_clean_commit_with_its_calibration(run):
    tracked = set(subprocess.run(["git", "ls-files", "docs/results/seed"], cwd=REPO,
                                 capture_output=True, text=True, check=True).stdout.split())  # fmt: skip
    assert "docs/results/seed/run.json" in tracked
    assert all(f"docs/results/seed/{s.file}" in tracked for s in run.steps)
    assert run.meta.git_dirty is False and run.meta.git_commit
    assert run.meta.spec_name == "seed"
    calibration = run.meta.calibration or {}
    assert "error" not in calibration and calibration.get("p95_ms"), calibration


def test_every_point_three_times_on_the_default_broker(run):
    counts = Counter((s.mode, s.rate) for s in run.steps)
    rates = range(50, 401, 50)
    assert set(counts) == {(m, r) for m in ("sync", "async") for r in rates}
    assert set(counts.values()) == {3}
    versions = {((s.broker or {}).get("facts") or {}).get("rabbitmq_version") for s in run.steps}
    assert versions and all(str(v).startswith("4.") for v in versions), versions
