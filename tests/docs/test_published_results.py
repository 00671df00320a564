"""The published results (docs/results/*): every report page renders in a real browser, and its
tables are exactly what the committed raw data gives today."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from browser_testlib import assert_page_ok, render_page

from analysis.report import make_report

REPO = Path(__file__).resolve().parents[2]


def published_runs() -> list[Path]:
    tracked = subprocess.run(
        ["git", "ls-files", "docs/results"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted({(REPO / f).parents[0] for f in tracked if f.endswith("/run.json")})


RUNS = published_runs()


def test_the_seed_and_publisher_runs_are_published():
    assert {r.name for r in RUNS} >= {"seed", "publishers"}


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_every_step_is_published_with_its_samples_and_timeline(run):
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete" and meta["steps"]
    for name in meta["steps"]:
        step = json.loads((run / "steps" / name).read_text())
        assert (run / step["samples"]["file"]).is_file(), name
        assert (run / "report" / "timelines" / name.replace(".json", ".png")).is_file(), name


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_published_tables_are_what_the_raw_data_gives(run, tmp_path):
    rebuilt = make_report(run, out_dir=tmp_path, charts=False)
    assert rebuilt.summary_csv.read_text() == (run / "report" / "summary.csv").read_text(), (
        f"{run}/report is stale: rebuild it with `python -m analysis {run.relative_to(REPO)}`"
    )


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_published_page_renders_in_a_real_browser(run, tmp_path):
    meta = json.loads((run / "run.json").read_text())
    check = render_page(run / "report" / "index.html", tmp_path / "screenshot.png")
    assert_page_ok(check)
    assert check.images_total >= len(meta["steps"]) + 4  # a timeline per step and the charts
