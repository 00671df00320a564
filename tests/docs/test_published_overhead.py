"""The published cost of the sweep's instruments (docs/results/overhead, `make overhead`): every
run from a clean commit and tracked, every series repeated, and its tables and the block
its page quotes what the committed runs give today (analysis/overhead.py)."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from offload_lab.analysis import overhead

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "results" / "overhead"
SERIES = {  # spec: (its series in order, how many repeats of each)
    "overhead": (["all_off", "ledger_file", "ledger_broker", "samples", "host_sampling", "all_on"], 3),
    "overhead-sync": (["all_off", "samples", "host_sampling", "all_on"], 3),
    "overhead-stats": (["stats_1s", "stats_5s"], 3),
    "overhead-total": (["all_off", "all_on"], 8),
}


@pytest.fixture(scope="module")
def points():
    return overhead.load_points(OUT)


def test_every_run_is_tracked_and_from_a_clean_commit(points):
    tracked = set(subprocess.run(["git", "ls-files", "docs/results/overhead"], cwd=REPO,
                                 capture_output=True, text=True, check=True).stdout.split())  # fmt: skip
    assert f"docs/results/overhead/{overhead.TABLE_FILE}" in tracked
    for point in points:
        assert f"docs/results/overhead/{point['run']}/run.json" in tracked, point["run"]
        assert point["git_dirty"] is False and point["git_commit"], point["run"]
        assert "error" not in (point["calibration"] or {"error": "none"}), point["run"]


def test_every_spec_is_there_with_each_series_repeated(points):
    specs = {json.loads((OUT / p["run"] / "run.json").read_text())["spec_name"]: p for p in points}
    assert set(SERIES) <= set(specs), sorted(specs)
    for name, (series, repeats) in SERIES.items():
        counts = Counter(s["series"] for s in specs[name]["steps"])
        assert list(counts) == series and set(counts.values()) == {repeats}, (name, counts)


def test_the_tables_are_the_data(points):
    assert (OUT / overhead.TABLE_FILE).read_text() == overhead.overhead_markdown(points)
