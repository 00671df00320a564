"""Derived figures (docs/result-format.md), on hand-made step files."""

from __future__ import annotations

import analysis_testlib  # noqa: F401  (puts the repository on sys.path)
import pytest
from record_testlib import step_file as record_file

from offload_lab.analysis.charts import wants_log
from offload_lab.analysis.load import loaded_step
from offload_lab.analysis.metrics import compute_metrics
from offload_lab.records import StepRecord


def trend(avg, p95=None, p99=None):
    return {"type": "trend", "contains": "time", "values": {"avg": avg, "min": avg, "med": avg, "max": avg,
                                                           "p(90)": p95 or avg, "p(95)": p95 or avg,
                                                           "p(99)": p99 or avg}}  # fmt: skip


def step_file(mode="sync", rate=400, duration_s=30, iterations=12000, dropped=None, reqs=None, failed=0,
              avg=5.0, iter_avg=None, max_vus=100, hosts=None, core=None, broker=None,
              ledger=None):  # fmt: skip
    reqs = iterations if reqs is None else reqs
    metrics = {
        "iterations": {"type": "counter", "values": {"count": iterations, "rate": 363.0}},
        "http_reqs": {"type": "counter", "values": {"count": reqs, "rate": 363.0}},
        "http_req_failed": {
            "type": "rate",
            "values": {"rate": failed / reqs, "passes": failed, "fails": reqs - failed},
        },
        "http_req_duration": trend(avg),
        "iteration_duration": trend(iter_avg if iter_avg is not None else avg + 0.1),
    }
    if dropped is not None:
        metrics["dropped_iterations"] = {"type": "counter", "values": {"count": dropped, "rate": 1.0}}
    params = {"mode": mode, "rate": rate, "duration_s": duration_s, "pre_allocated_vus": max_vus,
              "max_vus": max_vus, "work_ms": 1000}  # fmt: skip
    return record_file(
        params, k6={"metrics": metrics}, hosts=hosts or {}, core=core, broker=broker, ledger=ledger
    )


def metrics_of(data):
    warnings: list[str] = []
    step = loaded_step(StepRecord.from_dict(data), "steps/01-x.json", warnings)
    return compute_metrics(step), warnings


def test_missing_dropped_iterations_counts_as_zero():
    m, warnings = metrics_of(step_file(iterations=12000, dropped=None))
    assert m.dropped == 0 and m.attempted == 12000 and m.drop_rate == 0
    assert not [w for w in warnings if "dropped" in w]  # k6 omits it when 0: not a warning


def test_drop_rate_is_dropped_over_attempted():
    m, _ = metrics_of(step_file(iterations=3000, dropped=1000))
    assert m.attempted == 4000 and m.drop_rate == pytest.approx(0.25)


def test_throughput_uses_configured_duration_not_k6_rate():
    # k6's rate (363/s) includes the graceful-stop tail; 12000 successes over 30 s are 400/s
    m, _ = metrics_of(step_file(rate=400, duration_s=30, iterations=12000))
    assert m.throughput == pytest.approx(400.0)


def test_http_req_failed_passes_are_the_failed_requests():
    m, _ = metrics_of(step_file(iterations=1000, failed=50))
    assert m.failed == 50 and m.successes == 950
    assert m.error_rate == pytest.approx(0.05)
    assert m.throughput == pytest.approx(950 / 30)


def test_lost_is_the_ledgers_figure_and_the_core_counters_are_never_called_lost():
    core = {"completed": 940, "dead_lettered": 10, "completion_latency_ms": {"count": 940, "p50": 1002,
            "p95": 1005, "p99": 1006, "max": 1010}}  # fmt: skip
    broker = {"peak": 35, "drain_s": 1.1, "drained": True, "samples": [[0, 0], [1, 35]]}
    m, _ = metrics_of(step_file(mode="async", iterations=1000, failed=50, core=core, broker=broker))
    # no ledger: the counters match, but no loss is counted either way
    assert m.accepted == 950 and m.counter_gap == 0 and m.lost is None and m.nothing_lost is None
    assert (m.comp_p50, m.comp_p95, m.comp_p99) == (1002, 1005, 1006)
    assert m.backlog_peak == 35 and m.drain_s == 1.1
    # a core restart resets its counters: 10 fewer counted, while the ledger, by task id, has all
    core["completed"] = 930
    ledger = {"accepted": 950, "lost": 0, "done": 940, "dead_lettered": 10}
    m, _ = metrics_of(
        step_file(mode="async", iterations=1000, failed=50, core=core, broker=broker, ledger=ledger)
    )
    assert m.counter_gap == 10 and m.lost == 0 and m.nothing_lost is True
    assert (m.completed, m.dead_lettered) == (940, 10)  # the ledger's ids, not the reset counter
    ledger["lost"] = 3
    m, _ = metrics_of(
        step_file(mode="async", iterations=1000, failed=50, core=core, broker=broker, ledger=ledger)
    )
    assert m.lost == 3 and m.nothing_lost is False


def test_backlog_is_what_waits_and_in_flight_what_was_delivered():
    broker = {"peak": 75, "peak_ready": 25, "peak_unacked": 50, "drain_s": 1.0, "drained": True}
    m, _ = metrics_of(step_file(mode="async", core={"completed": 0}, broker=broker))
    assert (m.backlog_peak, m.in_flight_peak) == (25, 50)


def test_backlog_peak_from_samples_when_peak_missing():
    broker = {"samples": [[0, 0], [1, 12], [2, 40], [3, 5]], "drain_s": None, "drained": False}
    m, _ = metrics_of(step_file(mode="async", core={"completed": 0}, broker=broker))
    assert m.backlog_peak == 40 and m.drained is False


def test_loadgen_saturated_flag():
    m, _ = metrics_of(
        step_file(hosts={"loadgen": {"cpu_pct": 96.0, "cpus": 2}, "gateway": {"cpu_pct": 40.0}})
    )
    assert m.loadgen_flag == "saturated" and m.loadgen_limited


def test_drops_with_idle_vus_flag_the_loadgen():
    # 400/s of 3 ms requests keep ~1 VU busy: drops with 100 VUs are the load generator's doing
    m, _ = metrics_of(step_file(iterations=11000, dropped=1000, avg=3.0, hosts={"loadgen": {"cpu_pct": 60.0},
                                "gateway": {"cpu_pct": 20.0}}))  # fmt: skip
    assert m.busy_vus == pytest.approx(11000 / 30 * 0.0031)
    assert m.loadgen_flag == "drops below VU cap" and m.loadgen_limited


def test_sync_drops_at_the_vu_cap_are_not_a_loadgen_problem():
    # 100 VUs each waiting 1 s: 100/s completes, the rest of 150/s is dropped
    m, _ = metrics_of(step_file(rate=150, iterations=3000, dropped=1500, avg=1000.0, iter_avg=1000.5))
    assert m.busy_vus == pytest.approx(100, rel=0.01)
    assert m.loadgen_flag == "VU cap" and not m.loadgen_limited


def test_a_k6_summary_without_metrics_is_a_warning_not_a_crash():
    data = step_file()
    data["k6"] = {"state": {"testRunDurationMs": 30_500}}
    m, warnings = metrics_of(data)
    assert any("no k6 summary" in w for w in warnings)
    assert m.throughput is None and m.lat_avg is None


def test_log_scale_rule():
    assert wants_log([1.0, 1000.0])  # async ~1 ms vs sync ~1 s
    assert not wants_log([10.0, 30.0])
    assert not wants_log([0.0, 5.0])  # zeros are ignored, one positive value is no spread


def test_hosts_keyed_by_name_with_group():
    hosts = {
        "vm-lg-1": {"group": "loadgen", "cpu_pct": 93.0, "cpus": 4},
        "vm-core-1": {"group": "core", "cpu_pct": 20.0, "cpus": 2},
        "vm-core-2": {"group": "core", "cpu_pct": 35.0, "cpus": 2},
    }
    m, _ = metrics_of(step_file(hosts=hosts))
    assert m.loadgen_cpu_pct == 93.0 and m.server_cpu_pct == 35.0
    assert m.loadgen_flag == "saturated"
