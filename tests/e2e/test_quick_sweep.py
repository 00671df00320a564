"""Assertions on the quick sweep's raw JSON and samples (recomputed here, not read from the report)."""

import csv
import re
import urllib.parse

import pytest
from browser_testlib import assert_page_ok, render_page

from offload_lab.analysis.samples import latency_stats, read_samples

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
    # A sync answer waits for the work, an async one never does: every repeat's median is
    # milliseconds, and no request fails. The tail and the drops are held on each point's best
    # repeat: a busy spell on the shared 2-core CI machine stalls one repeat now and then (once
    # CPU 0 was 98 % busy for two seconds, the gateway waiting for it 92 % of one of them: p95
    # 795 ms and 1.4 % dropped at 150/s, where its twin had 9.8 ms and none).
    points: dict[int, list[dict]] = {}
    for step in by_mode(steps, "async"):
        work_ms = step["step"]["work_ms"]
        assert metric(step, "http_req_duration", "med") < work_ms / 10, step["step"]
        assert metric(step, "http_req_failed", "passes") == 0, step["step"]
        points.setdefault(step["step"]["rate"], []).append(step)
    for repeats in points.values():
        best = min(repeats, key=lambda s: metric(s, "http_req_duration", "p(95)"))
        assert metric(best, "http_req_duration", "p(95)") < best["step"]["work_ms"] / 2, best["step"]
        assert metric(best, "dropped_iterations", "count") == 0, best["step"]


def test_nothing_accepted_is_lost(steps):
    for step in by_mode(steps, "async"):
        accepted = metric(step, "http_reqs", "count") - metric(step, "http_req_failed", "passes")
        core = step["core"]
        assert step["broker"]["drained"], step["step"]
        assert accepted == core["completed"] + core["dead_lettered"], (step["step"], accepted, core)
        assert core["completion_latency_ms"]["p50"] >= step["step"]["work_ms"]


def test_the_ledger_came_from_the_cores_files_and_proves_every_task_done(steps):
    """The lab's default ledger (core_go_ledger: file): read over SSH from the core's own file,
    nothing through the broker under test; every accepted id has its record."""
    for step in by_mode(steps, "async"):
        assert step["step"]["instruments"]["ledger"] == "file", step["step"]
        ledger = step["ledger"]
        assert "error" not in ledger, ledger
        assert ledger["accepted"] > 0 and ledger["lost"] == 0, ledger
        assert ledger["dead_lettered"] == 0 and ledger["done"] >= ledger["accepted"], ledger


def test_the_run_recorded_its_calibration_point(run):
    calibration = run["calibration"]
    assert "error" not in calibration, calibration
    assert calibration["endpoint"] == "POST /noop" and calibration["requests"] > 0, calibration
    assert 0 < calibration["p95_ms"] < 1000, calibration


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


# ---------------------------------------------------------------- evidence a reader can check


def test_every_point_ran_twice_interleaved(run, steps):
    assert run["spec"]["repeat"] == 2
    points = [(s["step"]["mode"], s["step"]["rate"]) for s in steps]
    half = len(points) // 2
    assert points[:half] == points[half:], "all points once, then all again"
    assert [s["step"]["repeat"] for s in steps] == [1] * half + [2] * half


def test_every_step_kept_its_per_request_samples(run_dir, steps):
    for step in steps:
        kept = step["samples"]
        assert kept and (run_dir / kept["file"]).is_file(), step["step"]
        samples = read_samples(run_dir / kept["file"])
        assert samples.count == metric(step, "http_reqs", "count") > 0, step["step"]
        assert samples.failed == metric(step, "http_req_failed", "passes"), step["step"]


def test_percentiles_from_samples_equal_k6s_summary(run_dir, steps):
    for step in steps:
        stats = latency_stats(read_samples(run_dir / step["samples"]["file"]))
        summary = step["k6"]["metrics"]["http_req_duration"]["values"]
        for ours, k6 in (("avg", "avg"), ("med", "med"), ("p95", "p(95)"), ("p99", "p(99)"), ("max", "max")):
            assert stats[ours] == pytest.approx(summary[k6], abs=0.01), (step["step"], ours)


def test_queue_and_cpu_were_sampled_every_second(steps):
    for step in steps:
        duration = step["step"]["duration_s"]
        # each host's loop reads on its own clock: a second may hold some hosts' readings only
        per_host: dict[str, list[float]] = {}
        for _, hosts in step["hosts_timeline"]["samples"]:
            for host, pct in hosts.items():
                per_host.setdefault(host.split("-")[-1], []).append(pct)
        assert set(per_host) == {"broker", "gateway", "core", "loadgen"}, step["step"]
        for host, readings in per_host.items():
            assert len(readings) >= duration, (step["step"], host)
            assert all(0 <= pct <= 100 for pct in readings), (step["step"], host, readings)
        assert len(step["broker"]["samples"]) >= duration, step["step"]
        clock = step["clock"]
        assert clock["t0_unix_s"] <= clock["load_started_unix_s"] < clock["load_ended_unix_s"]


def test_report_has_a_timeline_per_step_and_one_html_page(run_dir, run):
    report = run_dir / "report"
    for name in run["steps"]:
        assert (report / "timelines" / name.replace(".json", ".png")).stat().st_size > 10_000, name
    page = (report / "index.html").read_text(encoding="utf-8")
    charts = re.findall(r'<img src="([^"]+)"', page)  # linked beside the page, not held twice
    assert len(charts) >= 4 + len(run["steps"]) and "data:image" not in page
    assert all((report / urllib.parse.unquote(src)).stat().st_size > 10_000 for src in charts), charts
    rows = list(csv.DictReader((report / "summary.csv").open()))
    assert {r["row"] for r in rows} == {"step", "median", "min", "max"}
    assert {r["latency_source"] for r in rows if r["row"] == "step"} == {"samples"}
    # "lost" is the ledger's count, by task id, for every async step (each has a ledger)
    assert {(r["lost"], r["nothing_lost"]) for r in rows if r["row"] == "step" and r["mode"] == "async"} == {
        ("0", "yes")
    }


def test_html_report_renders_in_a_real_browser(run_dir):
    report = run_dir / "report"
    check = render_page(report / "index.html", report / "screenshot.png")
    assert_page_ok(check)
    assert check.images_total >= 4 + 8  # the charts and one timeline per step
    assert (report / "screenshot.png").stat().st_size > 50_000
