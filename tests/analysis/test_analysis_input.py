"""Bad or partial input: named in a clear message, the rest still charts."""

from __future__ import annotations

import json
from pathlib import Path

from analysis_testlib import read_csv, read_json, run_cli

from offload_lab.analysis.cli import main
from offload_lab.analysis.load import load_run
from offload_lab.analysis.report import make_report


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


def test_async_step_without_core_stats_or_broker_samples(sweep_run, capsys):
    path = sweep_run / "steps" / "02-async-10.json"
    step = read_json(path)
    step["core"], step["broker"] = None, None
    path.write_text(json.dumps(step))
    assert main([str(sweep_run), "-q", "--no-charts"]) == 0
    err = capsys.readouterr().err
    assert "steps/02-async-10.json: async step without 'core' stats" in err
    assert "steps/02-async-10.json: async step without 'broker' samples" in err
    rows = read_csv(sweep_run / "report" / "summary.csv")
    row = next(r for r in rows if r["file"] == "steps/02-async-10.json")
    assert float(row["throughput_rps"]) == float(row["successes"]) / 4  # the step's duration_s
    assert row["completed"] == "" and row["nothing_lost"] == ""


def test_a_step_file_of_no_known_shape_is_named_and_shown_missing(sweep_run, capsys):
    path = sweep_run / "steps" / "02-async-10.json"
    step = read_json(path)
    del step["step"]
    path.write_text(json.dumps(step))
    assert main([str(sweep_run), "-q", "--no-charts"]) == 0
    err = capsys.readouterr().err
    assert "steps/02-async-10.json: lacks step" in err and "; skipped" in err
    assert len(read_csv(sweep_run / "report" / "summary.csv")) == 3
    run = load_run(sweep_run)
    assert [(u.file, u.mode, u.rate) for u in run.unreadable] == [("steps/02-async-10.json", "async", 10.0)]
    md = (sweep_run / "report" / "summary.md").read_text()
    assert rows_of(md, "Client side, per point", "10", "async")[2] == "0 (+1 missing)"


def test_sync_only_run_skips_async_figures(sweep_run, capsys):
    for p in (sweep_run / "steps").glob("*-async-*.json"):
        p.unlink()
    assert main([str(sweep_run), "-q"]) == 0
    report = sweep_run / "report"
    assert not (report / "completion_latency.png").exists()
    md = (report / "summary.md").read_text()
    assert "completion_latency.png not written" in md
    assert Path(report / "throughput.png").exists()


def md_rows(md: str, title: str) -> list[list[str]]:
    block = md.split(f"## {title}\n")[1].strip("\n").split("\n\n")[0]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in block.splitlines()[2:]]


def test_an_unreadable_step_shows_as_missing_in_every_table(sweep_run, capsys):
    path = sweep_run / "steps" / "04-async-30.json"
    path.write_text(path.read_text()[:100])  # corrupt
    (sweep_run / "steps" / "03-sync-30.json").unlink()  # listed in run.json, gone
    assert main([str(sweep_run)]) == 0
    out = capsys.readouterr().out
    md = (sweep_run / "report" / "summary.md").read_text()
    study = md_rows(md, "The original study's table (per mode and rate)")
    assert study[1] == ["30"] + ["missing"] * 6  # sync and async at 30/s: neither could be read
    for title in ("Client side, per point", "Async: completion latency, backlog, nothing lost"):
        rows = {(r[0], r[1]): r for r in md_rows(md, title)}
        row = rows[("30", "async")]
        assert row[2] == "0 (+1 missing)" and set(row[3:]) == {"missing"}, (title, row)
    assert set(rows_of(md, "Client side, per point", "30", "sync")[3:]) == {"missing"}
    assert "missing: a step of that point could not be read" in md
    terminal = next(line.split() for line in out.splitlines() if line.split()[:2] == ["async", "30"])
    assert terminal[2:] == ["0", "(+1", "missing)"] + ["missing"] * 5
    # charts and the CSV still hold the steps that were read
    assert len(read_csv(sweep_run / "report" / "summary.csv")) == 2
    assert (sweep_run / "report" / "avg_latency.png").exists()


def rows_of(md: str, title: str, rate: str, series: str) -> list[str]:
    return next(r for r in md_rows(md, title) if r[:2] == [rate, series])


def test_an_unreadable_step_joins_the_series_the_others_leave_free(publishers_run):
    lost = publishers_run / "steps" / "05-async-30.json"
    label = read_json(lost)["step"]["label"]
    lost.write_text("")
    run = load_run(publishers_run)
    assert [(u.file, u.label, u.rate) for u in run.unreadable] == [("steps/05-async-30.json", label, 30.0)]
    report = make_report(publishers_run, charts=False)
    md = report.summary_md.read_text()
    assert set(rows_of(md, "Client side, per point", "30", label)[3:]) == {"missing"}
    assert "missing" not in rows_of(md, "Client side, per point", "10", label)


def test_a_missing_repeat_is_counted_beside_the_median_of_the_others(sweep_run, tmp_path):
    from test_analysis_repeats import make_repeated_run

    repeated = make_repeated_run(sweep_run, tmp_path / "20261127-000000-rep")
    (repeated / "steps" / "08-async-30-r2.json").write_text("{not json")
    md = make_report(repeated, charts=False).summary_md.read_text()
    row = rows_of(md, "Client side, per point", "30", "async")
    assert row[2] == "2 (+1 missing)"
    assert row[5] == "5.50 [2.00-9.00]"  # p95: the median of repeats 1 and 3 (2.0 and 9.0) [range]
