"""`fab capacity`: the search (x2 until a probe fails, then bisection to 5 %, at most 12 probes)
against fake probes, the verdict and bottleneck of one probe from made-up step files, the checks
of its options before any load, and the whole command wired to fakes of the lab."""

from __future__ import annotations

import json
import time

import pytest
from fab_command import fab
from record_testlib import step_file
from sweep_fakes import FakeCore, FakeCpu, FakeK6, FakeQueue, RecordingRemote

import fabfile
from offload_lab.capacity.probe import Probe, Slo, judge, probe_vus, shared_cpu_sets
from offload_lab.capacity.search import MAX_PROBES, CapacitySearch, plan, search
from offload_lab.cli import capacity_commands, run_start
from offload_lab.cli.task_help import CAPACITY_HELP
from offload_lab.cli.usage import UsageError
from offload_lab.plan.spec import SpecError
from offload_lab.records import StepRecord
from offload_lab.run.connections import ProvisionedSettings
from offload_lab.run.sweep import SweepServices
from offload_lab.services.gateway import GatewaySettings


def lab_with_capacity(capacity, invalid_above=None):
    """A fake probe: passes up to `capacity`; above `invalid_above` the loadgen is saturated."""
    rates = []

    def probe(rate):
        rates.append(rate)
        if rate <= capacity:
            return Probe(rate, True)
        invalid = invalid_above is not None and rate > invalid_above
        return Probe(
            rate,
            False,
            ["p95 31.0 ms over the SLO 20 ms"],
            ["x"],
            "loadgen" if invalid else "gateway",
            invalid,
        )

    return probe, rates


def test_doubles_until_a_failure_then_bisects_to_five_percent():
    probe, rates = lab_with_capacity(1000)
    result = search(probe, start=50, max_rate=5000)
    assert rates == [50, 100, 200, 400, 800, 1600, 1200, 1000, 1100, 1050]
    assert result.capacity == 1000 and result.first_failure.rate == 1050
    assert result.stopped == "within 5% (or 1/s)"
    assert result.headline().startswith("async capacity: 1,000/s (p95 <= 20 ms, errors <= 0.1 %, 0 dropped)")


@pytest.mark.parametrize("capacity", [7, 63, 333, 999, 1234, 2900, 4999])
def test_the_result_is_within_five_percent_in_at_most_twelve_probes(capacity):
    probe, rates = lab_with_capacity(capacity)
    result = search(probe, start=50, max_rate=5000)
    assert len(rates) <= MAX_PROBES
    assert result.capacity <= capacity < result.first_failure.rate
    if result.stopped.startswith("within"):
        assert result.first_failure.rate - result.capacity <= max(1, 0.05 * result.capacity)


def test_the_number_of_probes_is_bounded():
    probe, rates = lab_with_capacity(1234)
    result = search(probe, start=1, max_rate=5000)
    assert rates == [2**i for i in range(12)]  # 1 .. 2048: the 12th probe is the first failure
    assert result.capacity == 1024 and result.stopped == "12 probes (the most a search makes)"
    assert search(lab_with_capacity(1234)[0], start=1, max_rate=5000, max_probes=4).capacity == 8


def test_max_rate_passing_ends_the_search_with_or_more():
    probe, rates = lab_with_capacity(10_000)
    result = search(probe, start=1000, max_rate=3000)
    assert rates == [1000, 2000, 3000] and result.capacity == 3000 and result.first_failure is None
    assert result.stopped == "--max-rate 3000 passed" and "3,000/s (or more" in result.headline()


def test_a_failing_start_bisects_down():
    probe, rates = lab_with_capacity(20)
    result = search(probe, start=50, max_rate=5000)
    assert rates[:3] == [50, 25, 12] and result.capacity == 20 and result.first_failure.rate == 21
    probe, rates = lab_with_capacity(0)
    nothing = search(probe, start=8, max_rate=100)
    assert rates == [8, 4, 2, 1] and nothing.capacity is None
    assert nothing.headline().startswith("async capacity: no rate met the SLO")


def test_a_loadgen_bottleneck_makes_the_result_invalid_and_stops():
    probe, rates = lab_with_capacity(300, invalid_above=300)
    result = search(probe, start=100, max_rate=5000)
    assert rates == [100, 200, 400] and result.invalid
    assert "INVALID" in result.headline() and result.as_dict()["valid"] is False


def test_search_state_checks_its_bounds():
    with pytest.raises(ValueError):
        CapacitySearch(start=100, max_rate=50)


# --------------------------------------------------------------------------------------------
# one probe's verdict and bottleneck, from its step file


def step_data(mode="async", rate=400, avg=3.0, p95=8.0, dropped=0, failed=0, max_vus=100, **extra):
    """A probe's step file (parsed JSON), as the rejudge reads one."""
    iterations = rate * 10 - dropped
    data = step_file(
        {"mode": mode, "rate": rate, "duration_s": 10, "max_vus": max_vus, "work_ms": 1000},
        k6={
            "metrics": {
                "iterations": {"values": {"count": iterations}},
                "dropped_iterations": {"values": {"count": dropped}},
                "http_reqs": {"values": {"count": iterations}},
                "http_req_failed": {"values": {"passes": failed}},
                "http_req_duration": {
                    "values": {"avg": avg, "med": avg, "p(95)": p95, "p(99)": p95, "max": p95}
                },
            }
        },
        core={"completed": iterations - failed, "dead_lettered": 0},
        broker={"samples": [[t, 0, 0] for t in range(11)], "load_end_s": 10.0, "peak_ready": 0},
        hosts={
            h: {"group": h.removeprefix("lab-"), "cpu_pct": 30.0}
            for h in ("lab-gateway", "lab-core", "lab-loadgen")
        },
    )
    data.update(extra)
    return data


def judge_file(data, slo, shared_cpus=None) -> Probe:
    """The verdict on a probe's step file."""
    return judge(StepRecord.from_dict(data), slo, shared_cpus)


def test_a_probe_within_the_slo_passes():
    probe = judge_file(step_data(), Slo())
    assert probe.passed and probe.reasons == [] and probe.bottleneck is None
    assert probe.evidence == ["no host >= 90 % CPU, no stage saturated, no backlog: not identified"]


def test_each_failure_is_named():
    probe = judge_file(step_data(p95=31.0, dropped=40, failed=20), Slo(20, 0.1))
    assert not probe.passed
    assert probe.reasons[0] == "p95 31.0 ms over the SLO 20 ms"
    assert probe.reasons[1].startswith("40 iterations dropped (1.00 %)")
    assert probe.reasons[2] == "errors 0.51 % over 0.1 %"
    assert probe.failing_figures == ["p95_ms", "dropped", "error_pct"]  # what each reason's figure is
    sync = judge_file(step_data("sync", 50, avg=1004, p95=1025.0, max_vus=100), Slo(20))
    assert sync.reasons == ["p95 25.0 ms above the work time over the SLO 20 ms"]
    assert judge_file(step_data("sync", 50, avg=1004, p95=1015.0, max_vus=100), Slo(20)).passed


def test_the_client_short_of_vus_fails_and_makes_the_result_invalid():
    # ~76 of 80 VUs busy with p95 within the 200 ms the VUs are sized for: too few VUs
    probe = judge_file(step_data(rate=400, avg=190.0, p95=195.0, max_vus=80), Slo())
    assert "the client was short of VUs (~76 of 80 busy)" in probe.reasons
    assert probe.bottleneck == "client" and probe.invalid
    # a collapsing server (p95 10 s) uses up any number of VUs: that probe measured the lab
    collapse = judge_file(step_data(rate=400, avg=1500.0, p95=10000.0, max_vus=610), Slo())
    assert "the client was short of VUs (~600 of 610 busy)" in collapse.reasons
    assert collapse.bottleneck != "client" and not collapse.invalid


def test_a_saturated_loadgen_comes_first_and_invalidates():
    data = step_data(p95=40.0)
    data["hosts"]["lab-loadgen"]["cpu_pct"] = 97.0
    data["hosts"]["lab-gateway"]["cpu_pct"] = 95.0
    probe = judge_file(data, Slo())
    assert probe.bottleneck == "loadgen" and probe.invalid
    assert probe.evidence[:2] == [
        "the load generator lab-loadgen's CPUs were 97 % busy",
        "lab-gateway (gateway) CPUs 95 % busy",
    ]


def test_a_busy_server_host_is_named_from_its_timeline():
    data = step_data(p95=45.0)
    data["clock"] = {"t0_unix_s": 100.0, "load_started_unix_s": 100.5, "load_ended_unix_s": 110.5}
    # 40 % over the whole step (drain included), 95 % while k6 ran
    data["hosts"]["lab-gateway"]["cpu_pct"] = 40.0
    data["hosts_timeline"] = {
        "samples": [[t, {"lab-gateway": 95.0}] for t in range(1, 11)] + [[20, {"lab-gateway": 1.0}]]
    }
    probe = judge_file(data, Slo())
    assert probe.bottleneck == "lab-gateway CPU" and not probe.invalid
    assert probe.evidence[0] == "lab-gateway (gateway) CPUs 95 % busy"


def test_a_cpu_several_hosts_share_is_named_from_their_sum():
    run_hosts = {
        "gateway": [{"name": "lab-gateway", "cpu_list": "0"}],
        "core": [{"name": "lab-core", "cpu_list": "0"}],
        "broker": [{"name": "lab-broker", "cpu_list": "0"}],
        "loadgen": [{"name": "lab-loadgen", "cpu_list": "1"}],
    }
    shared = shared_cpu_sets(run_hosts)
    assert shared == {"0": ["lab-gateway", "lab-core", "lab-broker"]}
    data = step_data(p95=45.0)
    data["hosts"]["lab-broker"] = {"group": "broker", "cpu_pct": 35.0}
    data["hosts"]["lab-gateway"]["cpu_pct"] = 45.0
    data["hosts"]["lab-core"]["cpu_pct"] = 12.0  # 92 % of CPU 0, no host >= 90 % alone
    probe = judge_file(data, Slo(), shared)
    assert probe.bottleneck == "CPU 0 (shared)" and not probe.invalid
    assert probe.evidence[0] == "CPU 0, shared by lab-gateway, lab-core, lab-broker, 92 % busy"
    data["hosts"]["lab-core"]["cpu_pct"] = 2.0
    quiet = judge_file(data, Slo(), shared)
    assert (
        quiet.bottleneck is None
        and quiet.evidence[1] == "busiest: CPU 0 (lab-gateway, lab-core, lab-broker) 82 %"
    )


def test_a_shared_cpu_saturated_in_its_busiest_seconds_is_named_in_bursts():
    shared = {"0": ["lab-gateway", "lab-core"]}
    data = step_data(p95=110.0)
    data["clock"] = {"t0_unix_s": 100.0, "load_started_unix_s": 100.0, "load_ended_unix_s": 110.0}
    busy = [60, 60, 65, 70, 80, 90, 88, 75, 60, 60]  # the gateway's per-second CPU %: one burst
    data["hosts_timeline"] = {
        "samples": [[t, {"lab-gateway": g, "lab-core": 3.2}] for t, g in enumerate(busy, start=1)]
    }
    data["hosts"]["lab-core"]["cpu_pct"] = 3.2
    probe = judge_file(data, Slo(), shared)
    assert probe.bottleneck == "CPU 0 (shared, in bursts)"
    assert probe.evidence[0] == (
        "CPU 0, shared by lab-gateway, lab-core, 93 % busy in its busiest second (71 % on the whole)"
    )


def test_the_bottleneck_comes_from_a_higher_failure_when_the_first_names_nothing():
    marginal = Probe(550, False, ["p95 20.2 ms over the SLO 20 ms"], ["not identified"])
    clear = Probe(800, False, ["p95 110 ms over the SLO 20 ms"], ["CPU 0 busy"], "CPU 0 (shared, in bursts)")
    result = search(lambda rate: {550: marginal, 800: clear}.get(rate, Probe(rate, rate < 550)), 200, 5000)
    assert result.first_failure is marginal and result.bottleneck_probe is clear
    assert result.as_dict()["bottleneck"] == {
        "name": "CPU 0 (shared, in bursts)",
        "rate": 800,
        "evidence": ["CPU 0 busy"],
    }
    assert "CPU 0 (shared, in bursts) (named at 800/s): CPU 0 busy" in result.markdown()
    named_first = search(lambda rate: clear if rate >= 800 else Probe(rate, True), 200, 5000)
    assert named_first.bottleneck_probe is named_first.first_failure


def test_saturated_gateway_places_are_named():
    gthread = {"GUNICORN_WORKER_CLASS": "gthread", "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "8"}
    data = step_data("sync", 50, avg=2000.0, p95=3000.0, max_vus=1000, dropped=0)
    data["step"]["gateway"] = gthread
    data["k6"]["metrics"]["http_reqs"]["values"]["count"] = 160  # 16/s served
    data["k6"]["metrics"]["iterations"]["values"]["count"] = 160
    probe = judge_file(data, Slo())
    assert probe.bottleneck == "gateway" and probe.evidence[0] == "the gateway held ~32 of its 16 places"


def test_a_growing_backlog_fails_async_and_names_the_core():
    samples = [[t, 100 * t, 100 * t] for t in range(11)]  # ready +100/s through the load
    probe = judge_file(
        step_data(rate=600, broker={"samples": samples, "load_end_s": 10.0, "peak_ready": 1000}), Slo()
    )
    assert not probe.passed and probe.reasons == [
        "not sustained: the ready backlog grew to 1,000 during the load (consumer-bound)"
    ]
    assert probe.failing_figures == ["backlog_peak"]
    assert probe.bottleneck == "core"
    steady = [[t, 400, 0 if t % 2 else 30] for t in range(11)]  # a few waiting now and then
    assert judge_file(step_data(broker={"samples": steady, "load_end_s": 10.0}), Slo()).passed


def test_vus_are_sized_by_littles_law_with_headroom():
    assert probe_vus("sync", 800, 1000, Slo(20)) == 1450  # 800/s x (1 s + 200 ms) x 1.5 + 10
    assert probe_vus("async", 5000, 1000, Slo(20)) == 1510  # 5000/s x 200 ms x 1.5 + 10
    assert probe_vus("noop", 5000, 0, Slo(200)) == 3010  # 5000/s x 400 ms (twice the SLO) x 1.5 + 10
    assert probe_vus("sync", 5000, 60000, Slo(20)) == 10000  # k6's largest
    # a probe at the SLO's latency keeps every VU it needs below the short-of-VUs line (90 %)
    for mode, rate in (("sync", 100), ("async", 3000)):
        vus = probe_vus(mode, rate, 1000, Slo(20))
        assert rate * ((1000 if mode == "sync" else 0) + 20) / 1000 < 0.9 * vus


# --------------------------------------------------------------------------------------------
# the command


def test_bad_options_stop_before_the_lab_is_touched(monkeypatch):
    def no_lab(*args, **kwargs):
        raise AssertionError("the lab was touched")

    monkeypatch.setattr(run_start, "LabConnections", no_lab)
    with pytest.raises(UsageError) as info:
        capacity_commands.capacity(
            {"mode": "both", "slo_p95_ms": "fast", "max_rate": "40", "start": "50", "core": "PREFETCH=0"}
        )
    message = str(info.value)
    for part in (
        "--mode: must be sync, async or noop, got 'both'",
        "--slo-p95-ms: must be a number, got 'fast'",
        "--max-rate: must not be below --start (50), got 40",
        "core (--core).PREFETCH: must be between 1 and 65535, got 0",
    ):
        assert part in message
    with pytest.raises(UsageError, match="--mode: required, one of sync, async, noop"):
        capacity_commands.capacity({})
    with pytest.raises(UsageError, match="--gateway: settings are KEY=VALUE"):
        capacity_commands.capacity({"mode": "async", "gateway": "gevent"})


def test_plan_holds_the_settings_and_the_defaults():
    p = plan(
        {
            "mode": "sync",
            "gateway": "GUNICORN_WORKERS=4",
            "core": "WORK_MAX_CONCURRENT=2000",
            "duration": "5s",
        }
    )
    assert (p.start, p.max_rate, p.slo) == (50, 5000, Slo(20, 0.1))
    assert p.spec.modes == ["sync"] and p.spec.duration_s == 5
    assert p.spec.gateway == {"GUNICORN_WORKERS": "4"} and p.spec.core == {"WORK_MAX_CONCURRENT": "2000"}
    with pytest.raises(SpecError):
        plan({"mode": "async", "rates": "50"})


def test_the_fab_task_takes_the_options_help_lists(tmp_path):
    import inspect

    options = [p for p in inspect.signature(fabfile.capacity.body).parameters if p != "c"]
    assert sorted(options) == sorted(CAPACITY_HELP)
    r = fab("capacity", "--help")
    assert r.returncode == 0 and "--slo-p95-ms" in r.stdout and "--max-error-pct" in r.stdout
    assert "Example: fab capacity --mode async" in r.stdout
    r = fab("capacity", "--mode", "fast", "--inventory", "/nonexistent/inventory")
    assert r.returncode == 2 and "--mode: must be sync, async or noop, got 'fast'" in r.stderr


class CapacityK6(FakeK6):
    """k6 against a lab whose async path holds a 4 ms p95 up to `capacity`/s, 40 ms above it."""

    def __init__(self, capacity):
        super().__init__(load_s=0.02)
        self.capacity = capacity

    def run(self, step):
        summary = super().run(step)
        p95 = 4.0 if step.rate <= self.capacity else 40.0
        summary["metrics"]["http_req_duration"]["values"].update({"avg": 2.0, "med": 2.0, "p(95)": p95})
        return summary

    def prepare(self):
        pass

    def version(self):
        return "k6 fake"

    def cleanup(self):
        pass


class FakeConnections:
    """Stands in for offload_lab.run.connections.LabConnections: every service a fake."""

    capacity = 700

    def __init__(self, lab, run_id, password):
        self.inv = lab
        self.k6 = CapacityK6(self.capacity)
        self.mgmt = type("Mgmt", (), {"base_url": "http://broker:15672", "version": lambda self: "3.10.8"})()

    def preflight(self):
        return []

    def settings(self):
        return ProvisionedSettings(
            gateway={"PUBLISHER": "kombu_pool"}, cores={"lab-core": {"PREFETCH": "500"}}
        )

    def hosts_with_cpus(self):
        return {}

    def sweep_services(self):
        return SweepServices(
            k6=self.k6,
            core=FakeCore(),
            gateway=GatewaySettings(
                RecordingRemote(), "http://gw:8000", healthy=lambda u: True, sleep=lambda s: None
            ),
            cpu=FakeCpu(),
            queue_depth=FakeQueue(self.k6, drain_after_s=0.02),
            sample_interval_s=0.02,
            sleep=lambda s: time.sleep(min(s, 0.01)),
        )

    def close(self):
        pass


def test_the_command_runs_each_probe_as_a_step_and_writes_the_result(
    tmp_path, inventory_dir, monkeypatch, capsys
):
    monkeypatch.setattr(run_start, "LabConnections", FakeConnections)
    monkeypatch.setattr(run_start, "password", lambda: "pw")
    code = capacity_commands.capacity(
        {"mode": "async", "start": "100", "max_rate": "2000"},
        inventory=str(inventory_dir / "hosts.yml"),
        results_dir=str(tmp_path),
        run_id="cap",
    )
    assert code == 0
    folder = tmp_path / "cap"
    run = json.loads((folder / "run.json").read_text())
    result = json.loads((folder / "capacity.json").read_text())
    rates = [p["rate"] for p in result["probes"]]
    # the search, then its boundary (700 passed, 725 failed) twice more each, interleaved
    assert rates == [100, 200, 400, 800, 600, 700, 750, 725] + [700, 725, 700, 725]
    assert run["steps"][:8] == [f"{i:02d}-async-{r}-r1.json" for i, r in enumerate(rates[:8], start=1)]
    assert run["steps"][8:] == [
        "09-async-700-r2.json",
        "10-async-725-r2.json",
        "11-async-700-r3.json",
        "12-async-725-r3.json",
    ]
    assert run["capacity_search"]["boundary_repeats"] == 3
    assert result["capacity_rps"] == 700 and result["valid"] is True
    assert result["first_failure"]["rate"] == 725
    assert result["first_failure"]["reasons"] == ["p95 40.0 ms over the SLO 20 ms"]
    assert result["spread"]["repeated"] and result["spread"]["flipped_rates"] == []
    assert result["stopped"] == "within 5% (or 1/s); repeats: the boundary probed 3 times"
    assert run["capacity"] == {"capacity_rps": 700, "valid": True} and run["status"] == "complete"
    step = json.loads((folder / "steps" / "04-async-800-r1.json").read_text())
    assert step["step"]["max_vus"] == probe_vus("async", 800, 1000, Slo())
    assert step["limit"]["label"] == "core-capped"  # 800 tasks/s x 1 s against the provisioned PREFETCH 500
    assert json.loads((folder / "steps" / "11-async-700-r3.json").read_text())["step"]["repeat"] == 3
    md = (folder / "capacity.md").read_text()
    assert (
        md.startswith("# async capacity: 700/s")
        and "| 8 | 725 | fail: p95 40.0 ms over the SLO 20 ms |" in md
        and "**Spread:** verdicts never flipped: 700/s passed 3 of 3 (p95 4.0 ms); 725/s passed 0 of 3" in md
    )
    out = capsys.readouterr().out
    assert "step  1/20 async  100/s" in out and "async capacity: 700/s" in out


def test_one_boundary_repeat_keeps_the_search_as_it_was(tmp_path, inventory_dir, monkeypatch):
    monkeypatch.setattr(run_start, "LabConnections", FakeConnections)
    monkeypatch.setattr(run_start, "password", lambda: "pw")
    options = {"mode": "async", "start": "100", "max_rate": "2000", "boundary_repeats": "1"}
    code = capacity_commands.capacity(
        options, inventory=str(inventory_dir / "hosts.yml"), results_dir=str(tmp_path), run_id="cap"
    )
    assert code == 0
    run = json.loads((tmp_path / "cap" / "run.json").read_text())
    result = json.loads((tmp_path / "cap" / "capacity.json").read_text())
    rates = [100, 200, 400, 800, 600, 700, 750, 725]
    assert run["steps"] == [f"{i:02d}-async-{r}.json" for i, r in enumerate(rates, start=1)]
    assert result["capacity_rps"] == 700 and result["stopped"] == "within 5% (or 1/s)"
    assert result["spread"]["text"] == "unknown: no rate was probed more than once (boundary_repeats 1)"
