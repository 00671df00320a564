"""CPU waiting (Linux PSI "some", per host, second by second) as capacity evidence: read from the
hosts' loops, and a latency failure on a CPU that is not full named as contention for it, or,
on idle CPUs, as the path's own latency."""

from test_capacity import judge_file, step_data

from offload_lab.capacity.probe import CONTENDED_WAIT_PCT, Slo
from offload_lab.services.cpu import parse_readings, shares, waits

SHARED = {"0": ["lab-gateway", "lab-core", "lab-broker"]}


def test_the_loop_lines_give_cpu_use_and_cpu_wait_per_second():
    out = (
        "cpus 1\n"
        "100.0 usage_usec 1000000 some avg10=0.00 avg60=0.00 avg300=0.00 total=5000000\n"
        "101.0 usage_usec 1400000 some avg10=9.00 avg60=1.00 avg300=0.10 total=5250000\n"
        "102,0 usage_usec 1500000\n"  # no pressure file: use only
    )
    cpus, readings = parse_readings(out)
    assert cpus == 1
    assert [r.waited_us for r in readings] == [5000000, 5250000, None]
    assert shares(readings) == [(101.0, 40.0), (102.0, 10.0)]
    assert waits(readings) == [(101.0, 25.0)]  # 250 ms of the second; nothing across the gap


def test_proc_stat_lines_with_pressure_still_parse():
    out = (
        "cpus 2\n10.0 cpu 100 0 50 800 50 0 0 0 some avg10=1 total=0\n"
        "11.0 cpu 200 0 100 1100 100 0 0 0 some total=100000\n"
    )
    _, readings = parse_readings(out)
    assert shares(readings) == [(11.0, 30.0)]
    assert waits(readings) == [(11.0, 10.0)]


def _step(p95: float, use: dict[str, float], wait: dict[str, float]) -> dict:
    data = step_data(p95=p95)
    data["clock"] = {"t0_unix_s": 100.0, "load_started_unix_s": 100.0, "load_ended_unix_s": 110.0}
    for host, pct in use.items():
        data["hosts"][host] = {"group": host.removeprefix("lab-"), "cpu_pct": pct}
    data["hosts_timeline"] = {
        "samples": [[t, dict(use)] for t in range(1, 11)],
        "cpu_wait_samples": [[t, dict(wait)] for t in range(1, 11)],
    }
    return data


def test_a_latency_failure_on_a_contended_cpu_names_the_contention():
    use = {"lab-gateway": 24.0, "lab-core": 6.0, "lab-broker": 16.0}
    data = _step(33.0, use, {"lab-gateway": 18.0, "lab-core": 11.0, "lab-broker": 21.0})
    probe = judge_file(data, Slo(), SHARED)
    assert not probe.passed and probe.bottleneck == "CPU 0 (shared, contended)"
    assert probe.evidence[0] == (
        "CPU 0, shared by lab-gateway, lab-core, lab-broker, 46 % busy; the tasks of its hosts waited "
        "for it (share of the load's seconds, median): lab-broker 21 %, lab-gateway 18 %, lab-core 11 %"
    )


def test_waiting_below_the_threshold_names_nothing():
    use = {"lab-gateway": 24.0, "lab-core": 6.0, "lab-broker": 16.0}
    below = CONTENDED_WAIT_PCT - 1
    data = _step(33.0, use, {"lab-gateway": below, "lab-core": 5.0, "lab-broker": below})
    probe = judge_file(data, Slo(), SHARED)
    assert probe.bottleneck is None and "not identified" in probe.evidence[0]


def test_contention_is_not_named_for_a_failure_that_is_not_latency():
    use = {"lab-gateway": 24.0, "lab-core": 6.0, "lab-broker": 16.0}
    data = _step(8.0, use, {"lab-gateway": 30.0, "lab-core": 30.0, "lab-broker": 30.0})
    data["k6"]["metrics"]["http_req_failed"]["values"]["passes"] = 40  # 1 % errors, p95 fine
    probe = judge_file(data, Slo(), SHARED)
    assert not probe.passed and probe.bottleneck != "CPU 0 (shared, contended)"


def test_a_slow_path_on_idle_cpus_is_named_the_path_itself():
    use = {"lab-gateway": 2.0, "lab-core": 1.0, "lab-broker": 1.0}
    data = _step(36.0, use, {"lab-gateway": 1.0, "lab-core": 0.5, "lab-broker": 2.0})
    data["step"]["rate"] = 1
    probe = judge_file(data, Slo(), SHARED)
    assert probe.bottleneck == "the path itself"
    assert probe.evidence[0].startswith("p95 over the SLO at 1/s with CPU 0, shared by lab-gateway")
    busier = _step(36.0, {h: 20.0 for h in use}, {h: 1.0 for h in use})
    assert judge_file(busier, Slo(), SHARED).bottleneck is None  # 60 % busy is not idle


def test_errors_with_nothing_full_are_named_the_path_itself():
    use = {"lab-gateway": 13.0, "lab-core": 3.0, "lab-broker": 9.0}
    data = _step(12.0, use, {"lab-gateway": 4.0, "lab-core": 6.0, "lab-broker": 8.0})
    data["k6"]["metrics"]["http_req_failed"]["values"]["passes"] = 20  # 0.5 % of 4,000
    probe = judge_file(data, Slo(), SHARED)
    assert probe.reasons == ["errors 0.50 % over 0.1 %"]
    assert probe.bottleneck == "the path itself"
    assert probe.evidence[0].startswith("0.50 % of requests failed at 400/s with CPU 0")
    saturated = _step(12.0, {h: 31.0 for h in use}, {h: 4.0 for h in use})
    saturated["k6"]["metrics"]["http_req_failed"]["values"]["passes"] = 20
    assert judge_file(saturated, Slo(), SHARED).bottleneck == "CPU 0 (shared)"  # 93 %: the CPU, not the path
