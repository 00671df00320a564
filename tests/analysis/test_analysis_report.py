"""Full reports from run folders built from real k6 output (tests/analysis/fixtures/)."""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import pytest
from analysis_testlib import FIXTURES, k6_expected, read_csv, read_json, run_cli
from PIL import Image

from offload_lab.analysis.cli import main

CHARTS = [
    "avg_latency.png",
    "p95_latency.png",
    "throughput.png",
    "drop_rate.png",
    "error_rate.png",
    "completion_latency.png",
    "backlog.png",
    "overview.png",
]


def check_png(path: Path) -> None:
    assert path.exists(), path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    assert path.stat().st_size > 10_000, path  # a real chart, not an empty canvas
    with Image.open(path) as img:
        w, h = img.size
    assert w >= 600 and h >= 400, (path, img.size)


@pytest.mark.parametrize("name", ["sweep", "publishers"])
def test_fixtures_hold_real_k6_summaries(name):
    run = read_json(FIXTURES / name / "run.json")
    assert run["schema_version"] == 1 and run["status"] == "complete"
    assert run["versions"]["k6"].startswith("k6 v1.1.0")
    for step_name in run["steps"]:
        step = read_json(FIXTURES / name / "steps" / step_name)
        k6 = step["k6"]
        # the shape handleSummary writes, with p(99) asked for through summaryTrendStats
        assert set(k6) >= {"root_group", "options", "state", "metrics"}
        assert "p(99)" in k6["options"]["summaryTrendStats"]
        assert k6["metrics"]["http_req_duration"]["type"] == "trend"
        assert "p(99)" in k6["metrics"]["http_req_duration"]["values"]


def test_report_of_a_sweep(sweep_run, capsys):
    assert main([str(sweep_run)]) == 0
    out = capsys.readouterr().out
    report = sweep_run / "report"
    for chart in CHARTS:
        check_png(report / chart)
    md = (report / "summary.md").read_text()
    rows = read_csv(report / "summary.csv")
    run = read_json(sweep_run / "run.json")

    # header: the run described
    for text in [run["run_id"], "fixture-sweep", run["git_commit"], "loadgen: loadgen 127.0.0.1"]:
        assert text in md
    assert "| step duration (s) | 4 |" in md and "| work time (ms) | 200 |" in md
    assert "| preAllocatedVUs / maxVUs | 5 / 5 |" in md

    # every step's numbers equal what we compute here from the raw k6 JSON
    assert [(r["label"], r["rate"]) for r in rows] == [
        ("sync", "10"),
        ("async", "10"),
        ("sync", "30"),
        ("async", "30"),
    ]
    for row in rows:
        step = read_json(sweep_run / row["file"])
        exp = k6_expected(step)
        for key, value in exp.items():
            assert float(row[key]) == pytest.approx(value, rel=1e-5, abs=1e-6), (row["file"], key)

    # sync at 30/s with 5 VUs x 200 ms of work must have dropped iterations (k6 reported them)
    sync30 = read_json(sweep_run / "steps" / "03-sync-30.json")
    exp = k6_expected(sync30)
    assert exp["dropped"] > 0
    drop_text = f"{exp['drop_rate_pct']:.1f}%"
    thr_text = f"{exp['throughput_rps']:.1f}"
    study = md.split("## The original study's table")[1].split("##")[0]
    line30 = next(line for line in study.splitlines() if line.startswith("| 30 |"))
    assert drop_text in line30 and thr_text in line30
    assert drop_text in out  # the table is printed too

    # async: accepted vs completed + dead-lettered
    async30 = read_json(sweep_run / "steps" / "04-async-30.json")
    row = next(r for r in rows if r["file"] == "steps/04-async-30.json")
    accepted = k6_expected(async30)["successes"]
    assert int(row["accepted"]) == accepted
    gap = accepted - async30["core"]["completed"] - async30["core"]["dead_lettered"]
    assert int(row["accepted_minus_core_counted"]) == gap
    # this step has no ledger: no loss is counted, and the counters are not one
    assert row["lost"] == "" and row["nothing_lost"] == ""
    assert float(row["backlog_peak"]) == async30["broker"]["peak"]
    assert float(row["completion_p95_ms"]) == pytest.approx(async30["core"]["completion_latency_ms"]["p95"])
    assert "## Async: completion latency, backlog, nothing lost" in md
    assert "## Warnings\n\nNone" in md
    # the sync drops came from all 5 VUs waiting on 200 ms responses: a VU-cap note, not a loadgen flag
    assert next(r for r in rows if r["file"] == "steps/03-sync-30.json")["loadgen_flag"] == "VU cap"


def test_cli_subprocess_and_same_report_from_any_location(sweep_run, tmp_path):
    """The report depends on the folder's content only, not on where it lives."""
    other = tmp_path / "elsewhere" / "copy"
    shutil.copytree(sweep_run, other)
    a = run_cli(sweep_run)
    b = run_cli(other)
    assert a.returncode == 0, a.stderr
    assert b.returncode == 0, b.stderr
    assert "report written to" in a.stdout and a.stderr == ""
    for name in ["summary.md", "summary.csv"]:
        assert filecmp.cmp(sweep_run / "report" / name, other / "report" / name, shallow=False)


def test_publisher_story_several_async_labels(publishers_run, capsys):
    assert main([str(publishers_run), "--quiet"]) == 0
    report = publishers_run / "report"
    for chart in CHARTS:
        check_png(report / chart)
    rows = read_csv(report / "summary.csv")
    assert {r["series"] for r in rows} == {"kombu_pool", "pika_per_request", "pika_shared"}
    assert all(r["mode"] == "async" for r in rows)
    md = (report / "summary.md").read_text()
    assert "kombu_pool avg latency (ms)" in md and "pika_shared drop rate" in md
    # pika_shared failed some publishes: its error rate and throughput come from the k6 JSON
    for row in rows:
        exp = k6_expected(read_json(publishers_run / row["file"]))
        assert float(row["error_rate_pct"]) == pytest.approx(exp["error_rate_pct"])
        assert int(row["accepted"]) == exp["successes"]
    shared = [r for r in rows if r["label"] == "pika_shared"]
    assert any(float(r["error_rate_pct"]) > 0 for r in shared)
    assert capsys.readouterr().out.startswith("report written to")


def test_compare_two_runs(sweep_run, publishers_run):
    res = run_cli("--compare", sweep_run, publishers_run)
    assert res.returncode == 0, res.stderr
    run_b = read_json(publishers_run / "run.json")
    out = sweep_run / "report" / f"compare-{run_b['run_id']}"
    for chart in CHARTS:
        check_png(out / chart)
    rows = read_csv(out / "summary.csv")
    series = {r["series"] for r in rows}
    assert {"fixture-sweep: sync", "fixture-sweep: async", "fixture-publishers: kombu_pool"} <= series
    assert {r["run_id"] for r in rows} == {read_json(sweep_run / "run.json")["run_id"], run_b["run_id"]}
    md = (out / "summary.md").read_text()
    assert "fixture-sweep: sync avg latency (ms)" in md


def test_compare_same_spec_uses_labels(sweep_run, tmp_path):
    out = tmp_path / "cmp"
    assert (
        main(
            [
                "--compare",
                str(sweep_run),
                str(sweep_run),
                "--labels",
                "lab",
                "vms",
                "--out",
                str(out),
                "-q",
                "--no-charts",
            ]
        )
        == 0
    )
    rows = read_csv(out / "summary.csv")
    assert {r["series"] for r in rows} == {"lab: sync", "lab: async", "vms: sync", "vms: async"}


def test_warnings_list_every_step_the_tables_flag(sweep_run):
    """A ⚠ in a table is a line in Warnings, with its step and reason: never "None" beside it."""
    flagged = sweep_run / "steps" / "04-async-30.json"
    data = read_json(flagged)
    data["hosts"] = {"loadgen": {"cpu_pct": 96.0, "cpus": 1}}
    flagged.write_text(json.dumps(data))
    from offload_lab.analysis.report import make_report

    report = make_report(sweep_run, out_dir=sweep_run / "report", charts=False)
    md = (sweep_run / "report" / "summary.md").read_text()
    warnings = md.split("## Warnings")[1]
    assert "None" not in warnings and "⚠ loadgen saturated" in md
    assert "steps/04-async-30.json (async 30/s): ⚠ saturated: loadgen CPU 96% (over 90%)" in warnings
    assert [w for w in report.warnings if "04-async-30" in w]
