"""The publisher benchmark's verdicts (offload_lab/analysis/publisher_bench.py) and its runner's plan
(bench/publishers.py): capacity, ratios within a repeat, rotation, bounds checked before load."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from analysis_testlib import FIXTURES, read_json

from offload_lab.analysis import publisher_bench as pb

REPO = Path(__file__).resolve().parents[2]
REAL_SUMMARY = read_json(FIXTURES / "sweep" / "steps" / "04-async-30.json")["k6"]


def load_runner():
    spec = importlib.util.spec_from_file_location("bench_publishers", REPO / "bench" / "publishers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def summary(p95_ms: float, dropped: int = 0, failed: int = 0) -> dict:
    """A real k6 summary with its p95, drops and failures replaced."""
    data = copy.deepcopy(REAL_SUMMARY)
    metrics = data["metrics"]
    metrics["http_req_duration"]["values"]["p(95)"] = p95_ms
    metrics["http_req_failed"]["values"]["passes"] = failed
    metrics["dropped_iterations"] = {"type": "counter", "values": {"count": dropped, "rate": 0}}
    return data


def write_bench(folder: Path, steps: dict[tuple[int, int, str], dict], subjects: list[str]) -> Path:
    """steps: (repeat, rate, subject) -> k6 summary."""
    (folder / "k6").mkdir(parents=True)
    entries = []
    for position, ((repeat, rate, subject), data) in enumerate(steps.items()):
        name = f"k6/r{repeat}-{rate}-{len(entries)}.json"
        (folder / name).write_text(json.dumps(data))
        entries.append(
            {"repeat": repeat, "rate": rate, "subject": subject, "position": position % 3, "summary": name}
        )
    settings = {
        "duration_s": 4.0,
        "vus": 100,
        "p95_ms": 20,
        "rates": sorted({rate for _, rate, _ in steps}),
        "repeats": 2,
        "gateway": "gevent",
        "cpus": 2,
        "started": "2026-12-06T00:00:00+00:00",
        "git_commit": "0123456789abcdef",
        "git_dirty": False,
    }
    data = {
        "schema_version": pb.SCHEMA_VERSION,
        "mode": "publish",
        "settings": settings,
        "subjects": [
            {"name": s, "endpoint": "/noop" if s == pb.NO_OP else "/async", "gateway": {}} for s in subjects
        ],
        "steps": entries,
    }
    (folder / pb.BENCH_FILE).write_text(json.dumps(data))
    return folder


@pytest.fixture
def bench(tmp_path) -> pb.Bench:
    ok, slow, dropped = summary(3), summary(25), summary(5, dropped=4)
    steps = {
        # repeat 1: noop holds both rates, no-confirm holds 400 only, pipelined holds 400 only
        (1, 400, pb.NO_OP): ok,
        (1, 400, pb.NO_CONFIRM): ok,
        (1, 400, "pipelined"): ok,
        (1, 800, pb.NO_OP): ok,
        (1, 800, pb.NO_CONFIRM): slow,
        (1, 800, "pipelined"): dropped,
        # repeat 2: noop fails at 800, no-confirm holds both, pipelined fails at once
        (2, 400, pb.NO_OP): ok,
        (2, 400, pb.NO_CONFIRM): ok,
        (2, 400, "pipelined"): summary(3, failed=1),
        (2, 800, pb.NO_OP): slow,
        (2, 800, pb.NO_CONFIRM): ok,
    }
    return pb.load_bench(write_bench(tmp_path / "publish", steps, [pb.NO_OP, pb.NO_CONFIRM, "pipelined"]))


def test_a_step_holds_only_within_the_bound_with_nothing_dropped_or_failed(bench):
    held = {(s.repeat, s.rate, s.subject): s.held(bench.p95_bound_ms) for s in bench.steps}
    assert held[(1, 400, "pipelined")] and not held[(1, 800, "pipelined")]  # 4 dropped at p95 5 ms
    assert not held[(1, 800, pb.NO_CONFIRM)]  # p95 25 ms
    assert not held[(2, 400, "pipelined")]  # one request failed


def test_capacity_is_the_highest_rate_up_to_which_every_step_held(bench):
    assert bench.capacity(pb.NO_OP, 1) == pb.Capacity(800, held_every_rate=True)
    assert bench.capacity(pb.NO_CONFIRM, 1) == pb.Capacity(400, held_every_rate=False)
    assert bench.capacity(pb.NO_CONFIRM, 2) == pb.Capacity(800, held_every_rate=True)
    assert bench.capacity("pipelined", 2) == pb.Capacity(0, held_every_rate=False)


def test_ratios_are_taken_within_each_repeat_and_marked_as_bounds(bench):
    values, bound = bench.ratios(pb.NO_CONFIRM, pb.NO_OP)
    assert values == [400 / 800, 800 / 400] and bound
    values, _ = bench.ratios("pipelined", pb.NO_CONFIRM)
    assert values == [1.0, 0.0]


def test_the_table_gives_capacity_ratios_and_spread(bench):
    table = pb.capacity_table(bench)
    row = next(line for line in table.splitlines() if line.startswith(f"| {pb.NO_CONFIRM} |"))
    # capacities 400 and 800: median 600 [400-800]; ratio to no-op 0.5 and 2.0
    capacity = "600 [400-800] (held every rate in 1 of 2)"
    assert row == f"| {pb.NO_CONFIRM} | {capacity} | 1.00 * | 1.25 [0.50-2.00] * | 3.00 |"
    pipelined = next(line for line in table.splitlines() if line.startswith("| pipelined |"))
    assert "| 200 [0-400] |" in pipelined and "| 0.50 [0.00-1.00] * |" in pipelined


def test_the_step_figures_are_the_reports_definitions():
    step = read_json(FIXTURES / "sweep" / "steps" / "03-sync-30.json")
    figures = pb.step_figures(step["k6"], "/sync", step["step"]["rate"], step["step"]["duration_s"])
    metrics = step["k6"]["metrics"]
    requests = metrics["http_reqs"]["values"]["count"]
    failed = metrics["http_req_failed"]["values"]["passes"]
    assert figures.requests == requests
    assert figures.throughput == pytest.approx((requests - failed) / step["step"]["duration_s"])
    assert figures.dropped == metrics["dropped_iterations"]["values"]["count"] > 0
    assert figures.p95_ms == pytest.approx(metrics["http_req_duration"]["values"]["p(95)"])


def test_the_run_order_rotates_so_no_subject_always_runs_first():
    runner = load_runner()
    subjects = runner.SUBJECTS
    firsts = {runner.run_order(subjects, repeat, rate)[0].name for repeat in (1, 2, 3) for rate in range(3)}
    assert len(firsts) >= 3
    for repeat in (1, 2, 3):
        assert sorted(s.name for s in runner.run_order(subjects, repeat, 1)) == sorted(
            s.name for s in subjects
        )


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["--rate", "800", "400"], "increasing order"),
        (["--rate", "400", "4000"], "--rate"),
        (["--vus", "0"], "--vus"),
        (["--duration-s", "900"], "--duration-s"),
        (["--repeats", "0"], "--repeats"),
        (["--only", "kombu"], "unknown subject"),
    ],
)
def test_a_bad_setting_stops_before_any_load(argv, reason, capsys):
    with pytest.raises(SystemExit) as stopped:
        load_runner().parse_args(argv)
    assert stopped.value.code == 2 and reason in capsys.readouterr().err
