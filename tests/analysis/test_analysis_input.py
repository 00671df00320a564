"""Bad or partial input: named in a clear message, the rest still charts."""

from __future__ import annotations

import json
from pathlib import Path

from analysis_testlib import read_csv, read_json, run_cli

from analysis.cli import main


def test_missing_step_is_named_and_rest_charts(sweep_run):
    (sweep_run / "steps" / "03-sync-30.json").unlink()
    res = run_cli(sweep_run)
    assert res.returncode == 0
    assert "steps/03-sync-30.json: listed in run.json but missing" in res.stderr
    report = sweep_run / "report"
    assert (report / "avg_latency.png").stat().st_size > 10_000
    files = [r["file"] for r in read_csv(report / "summary.csv")]
    assert files == ["steps/01-sync-10.json", "steps/02-async-10.json", "steps/04-async-30.json"]
    md = (report / "summary.md").read_text()
    warnings = md.split("## Warnings")[1]
    assert "steps/03-sync-30.json" in warnings


def test_truncated_step_is_named_and_rest_charts(sweep_run, capsys):
    path = sweep_run / "steps" / "04-async-30.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    assert main([str(sweep_run), "-q"]) == 0
    err = capsys.readouterr().err
    assert "steps/04-async-30.json: not valid JSON, truncated or corrupt" in err
    report = sweep_run / "report"
    assert len(read_csv(report / "summary.csv")) == 3
    assert (report / "completion_latency.png").exists()  # the 10/s async step still charts
    assert "steps/04-async-30.json: not valid JSON" in (report / "summary.md").read_text()


def test_missing_k6_metric_is_named(sweep_run, capsys):
    path = sweep_run / "steps" / "01-sync-10.json"
    step = read_json(path)
    del step["k6"]["metrics"]["http_req_duration"]
    path.write_text(json.dumps(step))
    assert main([str(sweep_run), "-q", "--no-charts"]) == 0
    err = capsys.readouterr().err
    assert "steps/01-sync-10.json: k6 metric 'http_req_duration' missing from the summary" in err
    row = next(
        r for r in read_csv(sweep_run / "report" / "summary.csv") if r["file"] == "steps/01-sync-10.json"
    )
    assert row["latency_avg_ms"] == ""  # unknown, not 0
    assert float(row["throughput_rps"]) > 0  # the rest of the step still counts


def test_corrupt_run_json_still_reads_the_steps(sweep_run, capsys):
    (sweep_run / "run.json").write_text('{"schema_version": 1, "run_id": "x", "ste')
    assert main([str(sweep_run), "-q", "--no-charts"]) == 0
    err = capsys.readouterr().err
    assert "run.json: not valid JSON" in err
    assert len(read_csv(sweep_run / "report" / "summary.csv")) == 4


def test_interrupted_run_and_unlisted_step(sweep_run, capsys):
    run = read_json(sweep_run / "run.json")
    run["status"] = "interrupted"
    run["steps"] = run["steps"][:2]
    (sweep_run / "run.json").write_text(json.dumps(run))
    assert main([str(sweep_run), "-q", "--no-charts"]) == 0
    err = capsys.readouterr().err
    assert "run status is 'interrupted'" in err
    assert "steps/03-sync-30.json: present but not listed in run.json; included" in err


def test_missing_run_dir_is_a_clear_error(tmp_path):
    res = run_cli(tmp_path / "no-such-run")
    assert res.returncode != 0
    assert "does not exist" in res.stderr and "no-such-run" in res.stderr
    assert "Traceback" not in res.stderr


def test_folder_without_run_json_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "steps").mkdir()
    assert main([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "run.json is missing" in err


def test_no_usable_step_exits_non_zero(sweep_run, capsys):
    for p in (sweep_run / "steps").glob("*.json"):
        p.write_text("")
    assert main([str(sweep_run)]) == 1
    err = capsys.readouterr().err
    assert "nothing usable to chart" in err
    assert "steps/01-sync-10.json: empty file" in err


def test_usage_error(capsys):
    assert main([]) == 2
    assert "RUN_DIR" in capsys.readouterr().err


def test_step_without_async_parts_or_step_section(sweep_run, capsys):
    path = sweep_run / "steps" / "02-async-10.json"
    step = read_json(path)
    del step["core"], step["broker"], step["step"]
    path.write_text(json.dumps(step))
    assert main([str(sweep_run), "-q", "--no-charts"]) == 0
    err = capsys.readouterr().err
    assert "steps/02-async-10.json: no 'step' section; mode and rate taken from the file name" in err
    assert "without 'core' stats" in err
    rows = read_csv(sweep_run / "report" / "summary.csv")
    row = next(r for r in rows if r["file"] == "steps/02-async-10.json")
    # duration comes from the spec in run.json, so throughput is still exact
    assert float(row["throughput_rps"]) == float(row["successes"]) / 4
    assert row["completed"] == "" and row["nothing_lost"] == ""


def test_sync_only_run_skips_async_figures(sweep_run, capsys):
    for p in (sweep_run / "steps").glob("*-async-*.json"):
        p.unlink()
    assert main([str(sweep_run), "-q"]) == 0
    report = sweep_run / "report"
    assert not (report / "completion_latency.png").exists()
    md = (report / "summary.md").read_text()
    assert "completion_latency.png not written" in md
    assert Path(report / "throughput.png").exists()
