"""The report's ledger and faults tables, rebuilt from the run folder's raw files."""

from __future__ import annotations

import gzip
import json

from analysis_testlib import copy_run, current_step

from offload_lab.analysis.ledger_tables import faults_table, ledger_table
from offload_lab.analysis.load import load_run
from offload_lab.analysis.report import make_report


def add_ledger(run_dir, step_file, outcomes, recorded_lost=0):
    """Give an async fixture step samples with task ids, outcome records and a fault."""
    path = run_dir / "steps" / step_file
    data = current_step(path)
    stem = path.stem
    t0 = 1_796_290_000.0
    rows = ["metric_name,timestamp,metric_value,expected_response,status,task_id"]
    rows += [f"http_req_duration,{int((t0 + i) * 1000)},2.0,true,202,t-{i}" for i in range(4)]
    rows += [f"http_req_duration,{int((t0 + 4.5) * 1000)},2.0,false,503,t-4"]
    (run_dir / "samples").mkdir(exist_ok=True)
    with gzip.open(run_dir / f"samples/{stem}.csv.gz", "wt") as fh:
        fh.write("\n".join(rows) + "\n")
    (run_dir / "outcomes").mkdir(exist_ok=True)
    with gzip.open(run_dir / f"outcomes/{stem}.jsonl.gz", "wt") as fh:
        fh.writelines(json.dumps({"task_id": i, "outcome": "done"}) + "\n" for i in outcomes)
    data["samples"] = {"file": f"samples/{stem}.csv.gz", "rows": 5}
    data["clock"] = {"load_ended_unix_s": t0 + 10}
    data["ledger"] = {"file": f"outcomes/{stem}.jsonl.gz", "still_queued": 0, "lost": recorded_lost}
    data["faults"] = [{"action": "broker_restart", "at_s": 4.0, "started_unix_s": t0 + 4.2, "ok": True}]
    path.write_text(json.dumps(data))


def test_the_ledger_and_faults_come_from_the_raw_files(tmp_path):
    run_dir = copy_run("publishers", tmp_path)
    # t-1 done twice, t-3 never: the step JSON's own "lost 0" is not what the table trusts
    add_ledger(run_dir, "01-async-10.json", ["t-0", "t-1", "t-1", "t-2", "t-9"])
    run = load_run(run_dir)
    ledger = ledger_table(run)
    (row,) = ledger.rows
    cells = dict(zip(ledger.headers, row, strict=True))
    assert cells["accepted (202)"] == "4" and cells["lost"] == "1" and cells["verdict"] == "1 LOST"
    assert cells["duplicated"] == "1" and cells["done, not accepted"] == "1" and cells["done"] == "4"

    faults = faults_table(run)
    (row,) = faults.rows
    cells = dict(zip(faults.headers, row, strict=True))
    # the fault at +4.2 s; the 503 started at +4.498 s; no 202 after it: recovery unknown
    assert cells["fault"] == "broker_restart" and cells["503s"] == "1" and cells["errors"] == "1"
    assert cells["requests after"] == "1" and cells["recovery s"] == "n/a"


def test_the_report_shows_both_tables(tmp_path):
    run_dir = copy_run("publishers", tmp_path)
    add_ledger(run_dir, "01-async-10.json", ["t-0", "t-1", "t-2", "t-3"])
    make_report(run_dir, charts=False)
    md = (run_dir / "report/summary.md").read_text()
    assert "## Ledger by task id (async steps)" in md and "nothing lost" in md
    assert "## Faults" in md and "broker_restart" in md
    assert "Ledger by task id" in (run_dir / "report/index.html").read_text()


def test_tasks_the_broker_dead_lettered_come_from_their_raw_file(tmp_path):
    run_dir = copy_run("publishers", tmp_path)
    # t-3 has no record: the broker dead-lettered it (quorum delivery limit), it is not lost
    add_ledger(run_dir, "01-async-10.json", ["t-0", "t-1", "t-2"])
    path = run_dir / "steps" / "01-async-10.json"
    data = current_step(path)
    data["ledger"]["dead_letters_file"] = "dead_letters/01-async-10.jsonl.gz"
    path.write_text(json.dumps(data))
    (run_dir / "dead_letters").mkdir()
    with gzip.open(run_dir / "dead_letters/01-async-10.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"task_id": "t-3", "reason": "delivery_limit", "queue": "tasks"}) + "\n")
    ledger = ledger_table(load_run(run_dir))
    cells = dict(zip(ledger.headers, ledger.rows[0], strict=True))
    assert cells["dead-lettered by broker"] == "1 (delivery_limit 1)"
    assert cells["lost"] == "0" and cells["verdict"] == "nothing lost"
    (run_dir / "dead_letters/01-async-10.jsonl.gz").unlink()  # without it, t-3 is lost
    cells = dict(zip(ledger.headers, ledger_table(load_run(run_dir)).rows[0], strict=True))
    assert cells["lost"] == "1" and cells["dead-lettered by broker"] == "n/a"
