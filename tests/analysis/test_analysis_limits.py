"""The report shows which stage limited each step (the step file's `limit`, offload_lab/plan/limits.py):
a `limit` column in the client table and in summary.csv; older runs without it show n/a."""

from __future__ import annotations

import json

from analysis_testlib import current_step, read_csv

from offload_lab.analysis.load import load_run
from offload_lab.analysis.report import make_report


def md_rows(md: str, title: str) -> list[list[str]]:
    block = md.split(f"## {title}\n")[1].strip("\n").split("\n\n")[0]
    lines = block.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split(" | ")]
    return [
        dict(zip(header, (c.strip() for c in line.strip("|").split(" | ")), strict=True))
        for line in lines[2:]
    ]


def add_limit(run_dir, step_name, label):
    path = run_dir / "steps" / step_name
    data = current_step(path)
    data["limit"] = {
        "label": label,
        "needs": {"client": 30.2, "gateway": 30.2, "core": 30.0},
        "capacities": {"client": 20, "gateway": 2000, "core": 1000},
        "latency_ms": 1005.0,
        "latency_source": "estimate",
        "explanation": "k6 needs ~30.2 VUs (rate x 1005 ms) and has 20",
    }
    path.write_text(json.dumps(data))


def test_the_client_table_and_the_csv_name_each_steps_limit(sweep_run):
    add_limit(sweep_run, "03-sync-30.json", "client-capped")
    add_limit(sweep_run, "01-sync-10.json", "open")
    run = load_run(sweep_run)
    by_file = {s.file: s for s in run.steps}
    assert by_file["steps/03-sync-30.json"].limit["label"] == "client-capped"
    assert by_file["steps/02-async-10.json"].limit is None  # a run from before limits were recorded

    result = make_report(sweep_run, charts=False)
    rows = md_rows(result.summary_md.read_text(), "Client side, per point")
    limits = {(r["rate (req/s)"], r["series"]): r["limit"] for r in rows}
    assert limits == {
        ("10", "sync"): "open",
        ("10", "async"): "n/a",
        ("30", "sync"): "client-capped",
        ("30", "async"): "n/a",
    }
    assert "limit: the first stage (client, gateway, core)" in result.summary_md.read_text()
    csv_limits = {(r["mode"], r["rate"]): r["limit"] for r in read_csv(result.summary_csv)}
    assert csv_limits[("sync", "30")] == "client-capped" and csv_limits[("async", "30")] == ""


def test_a_run_without_limits_reads_as_before(sweep_run):
    result = make_report(sweep_run, charts=False)
    rows = md_rows(result.summary_md.read_text(), "Client side, per point")
    assert {r["limit"] for r in rows} == {"n/a"}
