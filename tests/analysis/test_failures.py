"""The report's failures section (issue 22), rebuilt from a run folder's raw files: the async
path by task id and attempt, completion latency by attempts, the delay queues second by
second, and the sync path's answers a client would retry."""

from __future__ import annotations

import gzip
import json

import matplotlib.pyplot as plt
from analysis_testlib import copy_run, current_step

from offload_lab.analysis.failures import stats_failures
from offload_lab.analysis.failures_tables import failures_tables
from offload_lab.analysis.ledger_tables import ledger_table
from offload_lab.analysis.load import load_run
from offload_lab.analysis.report import make_report
from offload_lab.analysis.timeline import build_timeline_figure
from offload_lab.analysis.timeline_inputs import step_json, timeline_inputs

T0 = 1_796_290_000.0
SETTINGS = {
    "TRANSIENT_FAIL_RATE": "0.1",
    "PERMANENT_FAIL_RATE": "0.001",
    "RETRY_DELAYS_MS": "1000,4000,16000",
}
ASYNC_STEP, SYNC_STEP = "02-async-10.json", "01-sync-10.json"


def outcome(task_id, kind, attempt, latency_ms=None, reason=None):
    record = {"task_id": task_id, "outcome": kind, "attempt": attempt, "redelivered": False}
    if reason:
        record["reason"] = reason
    if latency_ms is not None:
        enqueued = int(T0 * 1e9)
        record |= {"enqueued_at_ns": enqueued, "completed_at_ns": enqueued + int(latency_ms * 1e6)}
    return record


def retries(task_id, n):
    return [
        outcome(task_id, "retried", a, reason="transient") | {"delay_ms": 1000 * 4 ** (a - 1)}
        for a in range(1, n + 1)
    ]


# t-0..t-5 done on attempt 1; t-6 on 2, t-7 on 3; t-8 permanent; t-9 exhausted after 4
RECORDS = [
    *(outcome(f"t-{i}", "done", 1, 200 + i) for i in range(6)),
    *retries("t-6", 1),
    outcome("t-6", "done", 2, 1200),
    *retries("t-7", 2),
    outcome("t-7", "done", 3, 5200),
    outcome("t-8", "dead_lettered", 1, reason="permanent"),
    *retries("t-9", 3),
    outcome("t-9", "dead_lettered", 4, reason="exhausted"),
]
# broker.retry_queues as the sweep records it (docs/result-format.md; offload_lab/services/retry_queues.py)
DELAY_QUEUES = {
    "exchange": "tasks.retry",
    "delays_ms": [1000, 4000],
    "queues": ["tasks.retry.1000", "tasks.retry.4000"],
    "max_length": 2,
    "samples": [
        [0.0, {"tasks.retry.1000": 0, "tasks.retry.4000": 0}],
        [1.0, {"tasks.retry.1000": 2, "tasks.retry.4000": 0}],
        [2.0, {"tasks.retry.1000": 1, "tasks.retry.4000": 1}],
        [3.1, {"tasks.retry.1000": 0, "tasks.retry.4000": 1}],
    ],
    "peak": {"tasks.retry.1000": 2, "tasks.retry.4000": 1},
    "peak_total": 2,
    "full": ["tasks.retry.1000"],
    "sample_errors": 0,
}


def write_samples(run_dir, stem, rows):
    (run_dir / "samples").mkdir(exist_ok=True)
    with gzip.open(run_dir / f"samples/{stem}.csv.gz", "wt") as fh:
        fh.write("metric_name,timestamp,metric_value,expected_response,status,task_id\n")
        fh.writelines(
            f"http_req_duration,{int((T0 + i) * 1000)},{ms},{ok},{status},{tid}\n"
            for i, (ms, ok, status, tid) in enumerate(rows)
        )
    return f"samples/{stem}.csv.gz"


def with_failures(run_dir):
    """The sweep fixture's async step at 10/s with retries and dead letters, and its sync step
    at 10/s with 5xx answers and k6's own retries."""
    path = run_dir / "steps" / ASYNC_STEP
    data = current_step(path)
    stem = path.stem
    data["samples"] = {
        "file": write_samples(run_dir, stem, [(2.0, "true", 202, f"t-{i}") for i in range(10)])
    }
    (run_dir / "outcomes").mkdir()
    with gzip.open(run_dir / f"outcomes/{stem}.jsonl.gz", "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in RECORDS)
    data["ledger"] = {"file": f"outcomes/{stem}.jsonl.gz", "still_queued": 0}
    data["step"]["core"] = dict(SETTINGS)
    data["broker"]["retry_queues"] = DELAY_QUEUES
    path.write_text(json.dumps(data))

    path = run_dir / "steps" / SYNC_STEP
    data = current_step(path)
    statuses = [200] * 5 + [502] * 3 + [504, 0]
    rows = [(1000.0 if s == 200 else 5.0, "true" if s == 200 else "false", s or "", "") for s in statuses]
    data["samples"] = {"file": write_samples(run_dir, path.stem, rows)}
    data["step"]["core"] = dict(SETTINGS)
    data["core"] = {**(data.get("core") or {}), "work_failed": {"transient": 2, "permanent": 1}}
    metrics = data["k6"]["metrics"]
    metrics["offload_sync_retries"] = {"type": "counter", "values": {"count": 4, "rate": 1}}
    metrics["offload_sync_gave_up"] = {"type": "rate", "values": {"rate": 0.25, "passes": 1, "fails": 3}}
    metrics["offload_sync_attempts"] = {"type": "trend", "values": {"avg": 1.5, "max": 3, "med": 1}}
    metrics["offload_sync_final_ms"] = {"type": "trend", "values": {"med": 1001, "p(95)": 5100, "max": 6200}}
    path.write_text(json.dumps(data))
    return run_dir


def cells(table, row=0):
    return dict(zip(table.headers, table.rows[row], strict=True))


def tables_by_title(run_dir):
    return {t.title.split(" (")[0]: t for t in failures_tables(load_run(run_dir))}


def test_async_failures_by_task_id_and_attempt(tmp_path):
    tables = tables_by_title(with_failures(copy_run("sweep", tmp_path)))
    c = cells(tables["Failures and retries"])
    assert c["step"] == "async 10/s" and c["from"] == "ledger" and c["accepted (202)"] == "10"
    assert c["failure settings"] == "transient 0.1, permanent 0.001, delays 1000,4000,16000 ms"
    assert c["done on attempt 1"] == "6" and c["done after N attempts (N: tasks)"] == "2: 1; 3: 1"
    assert c["dead-lettered (reason, tasks, attempts)"] == "exhausted 1 (attempt 4); permanent 1 (attempt 1)"
    assert c["lost"] == "0"
    assert c["retries per task (retries)"] == "0.600 (6)"  # 1 + 2 + 3 retries over 10 tasks
    assert c["delay queues' peak"] == "1000 ms: 2; 4000 ms: 1"


def test_completion_latency_by_attempts(tmp_path):
    table = tables_by_title(with_failures(copy_run("sweep", tmp_path)))["Completion latency by attempts"]
    rows = {row[1]: dict(zip(table.headers, row, strict=True)) for row in table.rows}
    assert set(rows) == {"1", "2", "3"}  # dead letters have no completion latency
    assert rows["1"]["tasks"] == "6" and rows["1"]["max"] == "205"
    assert rows["2"]["p50"] == "1,200" and rows["3"]["p95"] == "5,200"


def test_delay_queues_second_by_second(tmp_path):
    table = tables_by_title(with_failures(copy_run("sweep", tmp_path)))["Delay queues"]
    first, second = (cells(table, i) for i in (0, 1))
    assert (
        first["queue"] == "tasks.retry.1000" and first["delay ms"] == "1,000" and first["max length"] == "2"
    )
    assert first["peak"] == "2 at 1 s (FULL: x-max-length reached)"
    assert first["depth each second since the step's start"] == "0 2 1 0"
    assert second["queue"] == "tasks.retry.4000" and second["peak"] == "1 at 2 s"
    assert second["max length"] == "2"


def test_a_task_still_waiting_for_a_retry_is_lost(tmp_path):
    run_dir = with_failures(copy_run("sweep", tmp_path))
    stem = ASYNC_STEP.removesuffix(".json")
    with gzip.open(run_dir / f"outcomes/{stem}.jsonl.gz", "wt") as fh:  # t-7 never got its 3rd attempt
        fh.writelines(json.dumps(r) + "\n" for r in RECORDS if r != outcome("t-7", "done", 3, 5200))
    c = cells(tables_by_title(run_dir)["Failures and retries"])
    assert c["lost"] == "1 (1 still waiting for a retry)"
    ledger = cells(ledger_table(load_run(run_dir)))
    assert ledger["lost"] == "1" and ledger["verdict"] == "1 LOST (1 still waiting for a retry)"


def test_the_ledger_table_counts_retried_tasks(tmp_path):
    c = cells(ledger_table(load_run(with_failures(copy_run("sweep", tmp_path)))))
    assert c["retried"] == "3" and c["done"] == "8" and c["dead-lettered"] == "2"  # t-6, t-7, t-9
    assert c["lost"] == "0" and c["duplicated"] == "0" and c["verdict"] == "nothing lost"


def test_the_sync_path_counts_what_a_client_would_retry(tmp_path):
    c = cells(tables_by_title(with_failures(copy_run("sweep", tmp_path)))["Failures on the sync path"])
    assert c["step"] == "sync 10/s" and c["requests"] == "10"
    assert c["5xx answers"] == "4 (502: 3, 504: 1; the core failed 3: permanent 1, transient 2)"
    assert c["no answer"] == "1"
    assert c["to retry (share)"] == "5 (50.0%)"
    assert c["k6 retries"] == "4" and c["gave up (of iterations)"] == "1 of 41"
    assert (
        c["attempts avg / max"] == "1.50 / 3"
        and c["user's latency p50 / p95 / max (ms)"] == "1,001 / 5,100 / 6,200"
    )


def test_sync_without_samples_takes_k6s_count(tmp_path):
    run_dir = with_failures(copy_run("sweep", tmp_path))
    path = run_dir / "steps" / SYNC_STEP
    data = json.loads(path.read_text())
    data["samples"] = None
    data["k6"]["metrics"]["offload_sync_5xx"] = {"type": "counter", "values": {"count": 7, "rate": 1}}
    path.write_text(json.dumps(data))
    c = cells(tables_by_title(run_dir)["Failures on the sync path"])
    assert c["5xx answers"] == "7 (the core failed 3: permanent 1, transient 2)"
    assert c["no answer"] == "n/a" and c["requests"] == "41"


def test_a_run_without_failures_has_no_failures_section(tmp_path):
    run_dir = copy_run("sweep", tmp_path)  # PERMANENT_FAIL_RATE 0, nothing failed
    assert failures_tables(load_run(run_dir)) == []
    make_report(run_dir, charts=False)
    assert "Failures" not in (run_dir / "report/summary.md").read_text()


def test_a_run_from_before_retries_reads_the_cores_counts(tmp_path):
    """The publishers fixture: PERMANENT_FAIL_RATE 0.05, a core without retries, no ledger."""
    run = load_run(copy_run("publishers", tmp_path))
    table = failures_tables(run)[0]
    assert len(table.rows) == len(run.steps)
    for row, step in zip(table.rows, run.steps, strict=True):
        c = dict(zip(table.headers, row, strict=True))
        assert (
            c["from"] == "core /stats (no retries)"
            and c["failure settings"] == "transient 0.0, permanent 0.05"
        )
        assert c["done on attempt 1"] == f"{step.core['completed']:,}" and c[
            "retries per task (retries)"
        ].endswith("(0)")
        dead = step.core["dead_lettered"]
        assert c["dead-lettered (reason, tasks, attempts)"] == (f"unknown {dead:,}" if dead else "0")


def test_the_cores_new_counters_without_a_ledger():
    core = {
        "retried": 5,
        "done_by_attempt": {"1": 8, "2": 2, "x": 1},
        "dead_lettered_by_reason": {"permanent": 1},
    }
    failures = stats_failures(core, accepted=11)
    assert failures.done_by_attempt == {1: 8, 2: 2} and failures.dead_by_reason == {"permanent": {0: 1}}
    assert (failures.retries, failures.lost, failures.source) == (5, 0, "core /stats")
    assert stats_failures({}, accepted=3) is None


def test_the_report_shows_the_failures_section_and_the_timeline_the_delay_queues(tmp_path):
    run_dir = with_failures(copy_run("sweep", tmp_path))
    csv_before = make_report(copy_run("sweep", tmp_path / "plain"), charts=False).summary_csv.read_text()
    result = make_report(run_dir, charts=False)
    md = result.summary_md.read_text()
    for title in (
        "## Failures and retries (async, by task id)",
        "## Completion latency by attempts (async, enqueued to done, ms)",
        "## Delay queues (async retries waiting for their backoff)",
        "## Failures on the sync path (what the client sees)",
    ):
        assert title in md
    assert "Failures on the sync path" in result.html.read_text()
    # summary.csv keeps its columns (the published results are checked against it)
    assert result.summary_csv.read_text().splitlines()[0] == csv_before.splitlines()[0]
    step = next(s for s in load_run(run_dir).steps if s.mode == "async")
    inputs = timeline_inputs(step_json(step, run_dir), run_dir)
    assert list(inputs.delay_queues) == ["tasks.retry.1000", "tasks.retry.4000"]
    assert inputs.delay_queues["tasks.retry.1000"][:, 1].tolist() == [0, 2, 1, 0]
    fig = build_timeline_figure(inputs, "async 10/s")
    try:
        queue_panel = fig.axes[3]
        dashed = {
            line.get_label(): list(map(float, line.get_ydata()))
            for line in queue_panel.lines
            if line.get_linestyle() == "--"
        }
        assert dashed["tasks.retry.1000"] == [0, 2, 1, 0] and dashed["tasks.retry.4000"] == [0, 0, 1, 1]
        assert "delay queue" in queue_panel.get_title(loc="left")
    finally:
        plt.close(fig)
