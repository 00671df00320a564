"""The servers' CPU figures (offload_lab/analysis/server_cpu.py): over the step, and the median
second of the load, which leaves out the readings before and after it."""

from __future__ import annotations

from offload_lab.analysis.server_cpu import load_window, servers_cpu, servers_cpu_during_load

HOSTS = {
    "lab-broker": {"group": "broker", "cpu_pct": 20.0},
    "lab-gateway": {"group": "gateway", "cpu_pct": 35.0},
    "lab-core": {"group": "core", "cpu_pct": 9.0},
    "lab-loadgen": {"group": "loadgen", "cpu_pct": 21.0},
}


def _reading(broker: float, gateway: float, core: float, loadgen: float = 50.0) -> dict:
    return {"lab-broker": broker, "lab-gateway": gateway, "lab-core": core, "lab-loadgen": loadgen}


def test_over_the_step_the_server_hosts_are_summed_and_the_loadgen_left_out():
    assert servers_cpu(HOSTS) == 64.0
    assert servers_cpu({}) is None


def test_during_the_load_the_median_second_inside_the_window():
    timeline = {
        "interval_s": 1.0,
        "samples": [
            [1.0, _reading(25, 40, 10)],  # 75
            [2.0, _reading(26, 41, 11)],  # 78
            [3.0, _reading(24, 40, 10)],  # 74
            [4.0, _reading(1, 1, 10)],  # after the load: left out
            [5.0, _reading(0, 0, 0)],
        ],
    }
    assert servers_cpu_during_load(HOSTS, timeline, (0.0, 3.05)) == 75.0
    # a reading that covers a second before the load started is left out too
    assert servers_cpu_during_load(HOSTS, timeline, (1.5, 3.05)) == 74.0


def test_during_the_load_none_without_a_timeline_or_a_complete_reading():
    assert servers_cpu_during_load(HOSTS, None, (0.0, 30.0)) is None
    partial = {"interval_s": 1.0, "samples": [[1.0, {"lab-broker": 20.0, "lab-gateway": 40.0}]]}
    assert servers_cpu_during_load(HOSTS, partial, (0.0, 30.0)) is None


def test_the_load_window_comes_from_the_clock_else_the_duration():
    clock = {"t0_unix_s": 100.0, "load_started_unix_s": 100.5, "load_ended_unix_s": 130.6}
    start, end = load_window(clock, 30)
    assert round(start, 3) == 0.5 and round(end, 3) == 30.6
    assert load_window(None, 30) == (0.0, 30.0)
