"""Assertions on the quick sweep's raw JSON, computed here independently of analysis/."""

import pytest

pytestmark = pytest.mark.e2e


def metric(step, name, key):
    values = step["k6"]["metrics"].get(name, {}).get("values", {})
    return values.get(key, 0)


def by_mode(steps, mode):
    chosen = [s for s in steps if s["step"]["mode"] == mode]
    assert chosen, f"the quick sweep ran no {mode} step"
    return chosen


def test_run_is_complete_and_covers_the_spec(run, steps):
    assert run["status"] == "complete"
    assert run["git_commit"]
    expected = {(m, r) for m in run["spec"]["modes"] for r in run["spec"]["rates"]}
    assert {(s["step"]["mode"], s["step"]["rate"]) for s in steps} == expected


def test_sync_waits_for_the_work(steps):
    for step in by_mode(steps, "sync"):
        work_ms = step["step"]["work_ms"]
        assert metric(step, "http_req_duration", "avg") >= work_ms, step["step"]


def test_async_answers_in_milliseconds_and_drops_nothing(steps):
    for step in by_mode(steps, "async"):
        work_ms = step["step"]["work_ms"]
        assert metric(step, "http_req_duration", "p(95)") < work_ms / 10, step["step"]
        assert metric(step, "dropped_iterations", "count") == 0, step["step"]
        assert metric(step, "http_req_failed", "passes") == 0, step["step"]


def test_nothing_accepted_is_lost(steps):
    for step in by_mode(steps, "async"):
        accepted = metric(step, "http_reqs", "count") - metric(step, "http_req_failed", "passes")
        core = step["core"]
        assert step["broker"]["drained"], step["step"]
        assert accepted == core["completed"] + core["dead_lettered"], (step["step"], accepted, core)
        assert core["completion_latency_ms"]["p50"] >= step["step"]["work_ms"]


def test_sync_is_capped_by_vus_over_work_time(steps):
    for step in by_mode(steps, "sync"):
        cap = step["step"]["max_vus"] / (step["step"]["work_ms"] / 1000)
        if step["step"]["rate"] > cap * 1.2:
            assert metric(step, "dropped_iterations", "count") > 0, step["step"]


def test_report_was_written(run_dir):
    report = run_dir / "report"
    assert (report / "summary.md").stat().st_size > 0
    assert (report / "summary.csv").stat().st_size > 0
    pngs = list(report.glob("*.png"))
    assert len(pngs) >= 4 and all(p.stat().st_size > 10_000 for p in pngs), pngs
