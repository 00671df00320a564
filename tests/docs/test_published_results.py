"""The published results (docs/results/*): every report page renders in a real browser, and its
tables are exactly what the committed raw data gives today. A capacity suite (docs/results/
capacity: `fab capacity --suite`) is a table over run folders: each subject is checked as a run,
and the table (capacity.json, capacity.md, report/capacity.csv) is what the subjects give."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import pytest
from browser_testlib import assert_page_ok, render_page

from offload_lab.analysis.capacity_table import build_table, is_suite_folder, table_markdown
from offload_lab.analysis.report import make_report

REPO = Path(__file__).resolve().parents[2]


def published(name: str) -> list[Path]:
    """The folders under docs/results holding a tracked file called `name`."""
    tracked = subprocess.run(
        ["git", "ls-files", "docs/results"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted({(REPO / f).parent for f in tracked if f.endswith(f"/{name}")})


RUNS = published("run.json")
# a capacity search published as its verdict (capacity.json, capacity.md) and raw data, without
# the derived report/ (docs/results/brokers: `python -m offload_lab.analysis FOLDER` rebuilds it)
REPORTED = [run for run in RUNS if (run / "report" / "index.html").is_file()]
SUITES = [folder for folder in published("capacity.json") if is_suite_folder(folder)]


def test_the_seed_and_publisher_runs_are_published():
    assert {r.name for r in RUNS} >= {"seed", "publishers"}


def test_only_capacity_searches_go_without_their_report():
    for run in sorted(set(RUNS) - set(REPORTED)):
        assert (run / "capacity.json").is_file() and (run / "capacity.md").is_file(), run


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_every_step_is_published_with_its_samples_and_timeline(run):
    """Samples wherever the step kept them (instruments.samples; docs/results/overhead has steps
    without, on purpose)."""
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete" and meta["steps"]
    for name in meta["steps"]:
        step = json.loads((run / "steps" / name).read_text())
        if (step["step"].get("instruments") or {}).get("samples", True):  # off: none were written
            assert (run / step["samples"]["file"]).is_file(), name
        else:
            assert step["samples"] is None, name
        if run in REPORTED:
            assert (run / "report" / "timelines" / name.replace(".json", ".png")).is_file(), name


@pytest.mark.parametrize("run", REPORTED, ids=lambda p: p.name)
def test_published_tables_are_what_the_raw_data_gives(run, tmp_path):
    rebuilt = make_report(run, out_dir=tmp_path, charts=False)
    assert rebuilt.summary_csv.read_text() == (run / "report" / "summary.csv").read_text(), (
        f"{run}/report is stale: rebuild it with `python -m offload_lab.analysis {run.relative_to(REPO)}`"
    )


@pytest.mark.parametrize("run", REPORTED, ids=lambda p: p.name)
def test_published_page_renders_in_a_real_browser(run, tmp_path):
    meta = json.loads((run / "run.json").read_text())
    check = render_page(run / "report" / "index.html", tmp_path / "screenshot.png")
    assert_page_ok(check)
    assert check.images_total >= len(meta["steps"]) + 4  # a timeline per step and the charts


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: p.name)
def test_published_capacity_table_is_what_the_subjects_give(suite, tmp_path):
    data = json.loads((suite / "capacity.json").read_text())
    names = [row["subject"] for row in data["subjects"]]
    for name in names:
        assert suite / name in RUNS, f"{suite.name}: subject {name} is not published as a run"
    rebuilt = build_table(suite, names)
    fix = f"{suite.relative_to(REPO)} is stale: publish its run again (scripts/publish-results.sh)"
    assert {k: data[k] for k in rebuilt} == rebuilt, fix
    assert (suite / "capacity.md").read_text() == table_markdown(data["suite"], rebuilt), fix
    report = make_report(suite, out_dir=tmp_path, charts=False)
    assert (tmp_path / "capacity.csv").read_text() == (suite / "report" / "capacity.csv").read_text(), fix
    assert not [w for w in report.warnings if "capacity.json" in w]
    assert (suite / "report" / "capacity.png").is_file() and (suite / "report" / "index.html").is_file()


def test_the_faults_page_gives_one_lost_figure_the_ledgers():
    """docs/results/faults: every async row's `lost` is its ledger's (0 under every fault), while
    the core's counters, which a restart resets, are only ever called what they are."""
    rows = list(csv.DictReader((REPO / "docs/results/faults/report/summary.csv").open()))
    async_rows = [r for r in rows if r["mode"] == "async"]
    assert len(async_rows) == 7 and all(r["lost"] == "0" and r["nothing_lost"] == "yes" for r in async_rows)
    assert any(r["accepted_minus_core_counted"] not in ("", "0") for r in async_rows)  # the restarts
    summary = (REPO / "docs/results/faults/report/summary.md").read_text()
    assert not re.search(r"[1-9][0-9,]* (LOST|lost)", summary)
