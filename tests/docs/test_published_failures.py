"""The published cost of failures on each path (docs/results/failures, `fab sweep --spec
failures`): one run from a clean commit, tracked, every series, mode and rate three times, the
ledger 0 lost in every async step, and the block its page quotes what the data give today
(analysis/failures_summary.py)."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from offload_lab.analysis.load import load_run

REPO = Path(__file__).resolve().parents[2]
FAILURES = REPO / "docs" / "results" / "failures"
SERIES = ("transient_0", "transient_1", "transient_10")


@pytest.fixture(scope="module")
def run():
    return load_run(FAILURES)


def test_the_run_is_tracked_from_a_clean_commit(run):
    tracked = set(subprocess.run(["git", "ls-files", "docs/results/failures"], cwd=REPO,
                                 capture_output=True, text=True, check=True).stdout.split())  # fmt: skip
    assert "docs/results/failures/run.json" in tracked
    assert all(f"docs/results/failures/{s.file}" in tracked for s in run.steps)
    assert run.meta.git_dirty is False and run.meta.git_commit and run.meta.spec_name == "failures"


def test_every_point_three_times_and_nothing_lost(run):
    counts = Counter((s.label, s.mode, s.rate) for s in run.steps)  # a series' step: "<series> <mode>"
    modes, rates = ("sync", "async"), (100, 200)
    assert set(counts) == {(f"{series} {m}", m, r) for series in SERIES for m in modes for r in rates}
    assert set(counts.values()) == {3}
    for step in run.steps:
        if step.mode == "async":
            assert step.ledger and step.ledger["lost"] == 0 and step.ledger["under_way"] == 0, step.file
