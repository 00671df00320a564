"""Which stage limits a step (Little's law): the seed's sync collapse is the client's cap, a
gthread 2x8 gateway caps sync at ~16/s and not async, a narrow core makes an async backlog; the
plan prints the labels and every step file records them."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sweep_fakes import FakeCore, FakeCpu, FakeK6, FakeQueue, RecordingRemote

from offload_lab.cli import commands
from offload_lab.plan import spec
from offload_lab.plan.core_spec import effective_core
from offload_lab.plan.limits import (
    GATEWAY_LATENCY_MS,
    describe_limits,
    gateway_concurrency,
    limit_of_step,
    measured_median_ms,
    step_limit,
)
from offload_lab.plan.steps import expand_steps
from offload_lab.records import RunRecord
from offload_lab.run.results import RunFolder
from offload_lab.run.sweep import Sweep, SweepServices, effective_gateway
from offload_lab.services.gateway import GatewaySettings

GTHREAD_2X8 = {"GUNICORN_WORKER_CLASS": "gthread", "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "8"}


def planned(step, provisioned_gateway=None, provisioned_cores=None):
    cores = [effective_core(c, step.core) for c in provisioned_cores or [{}]]
    return limit_of_step(step, effective_gateway(provisioned_gateway or {}, step.gateway), cores)


def test_the_seeds_sync_collapse_is_the_clients_cap():
    steps = expand_steps(spec.load("seed"))  # the real k6/sweeps/seed.yml, documented defaults
    labels = {(s.mode, s.rate): planned(s).label for s in steps}
    for (mode, rate), label in labels.items():
        if mode == "sync" and rate > 100:
            assert label == "client-capped", (mode, rate)
        if mode == "async":
            assert label == "open", (mode, rate)  # 400/s x 1 s = 400 tasks < PREFETCH 500
    assert labels[("sync", 50)] == "open"
    # 100/s: 100 VUs x (1 s + the gateway's ~5 ms) start slightly under 100/s (the seed dropped 4.3 %)
    assert labels[("sync", 100)] == "client-capped"
    limit = planned(next(s for s in steps if (s.mode, s.rate) == ("sync", 400)))
    assert limit.needs == {"client": 402.0, "gateway": 402.0, "core": 400.0}
    assert limit.capacities == {"client": 100, "gateway": 2000, "core": 1000}
    assert limit.latency_ms == 1000 + GATEWAY_LATENCY_MS and limit.latency_source == "estimate"
    assert "k6 needs ~402 VUs" in limit.explanation and "at most ~100/s" in limit.explanation


def test_gateway_concurrency_per_worker_class():
    assert gateway_concurrency({}) == 2 * 1000  # documented defaults: gevent 2 x 1000 connections
    assert gateway_concurrency(GTHREAD_2X8) == 16
    assert gateway_concurrency({"GUNICORN_WORKER_CLASS": "sync", "GUNICORN_WORKERS": "3"}) == 3
    gevent = {"GUNICORN_WORKER_CLASS": "gevent", "GUNICORN_WORKERS": "4", "GUNICORN_WORKER_CONNECTIONS": "50"}
    assert gateway_concurrency(gevent) == 200


def test_gthread_2x8_caps_sync_at_16_per_second_and_not_async():
    sync = step_limit("sync", 50, 1000, 1000, GTHREAD_2X8, [{}])
    assert sync.label == "gateway-capped" and sync.capacities["gateway"] == 16
    assert "gthread 2x8" in sync.explanation and "at most ~16/s" in sync.explanation
    assert step_limit("async", 800, 1000, 1000, GTHREAD_2X8, [{"PREFETCH": "1000"}]).label == "open"
    # measured: an async step whose median was 30 ms at 800/s held 24 threads: more than 16
    measured = step_limit("async", 800, 1000, 1000, GTHREAD_2X8, [{"PREFETCH": "1000"}], 30.0)
    assert measured.label == "gateway-capped" and measured.latency_source == "measured median"
    assert measured.needs["gateway"] == 24.0


def test_the_client_is_checked_first_in_request_order():
    # 100 VUs and a 16-thread gateway: the client runs out first at 400/s sync
    assert step_limit("sync", 400, 1000, 100, GTHREAD_2X8, [{}]).label == "client-capped"


def test_a_narrow_core_makes_an_async_backlog_and_sync_503s():
    narrow = {"PREFETCH": "100", "MAX_IN_FLIGHT": "100"}
    limit = step_limit("async", 400, 1000, 100, {}, [narrow])
    assert limit.label == "core-capped" and limit.needs["core"] == 400 and limit.capacities["core"] == 100
    assert "all accepted, a backlog grows ~300/s (done ~100/s)" in limit.explanation
    assert step_limit("async", 400, 1000, 100, {}, [{"PREFETCH": "500", "MAX_IN_FLIGHT": "100"}]).label == (
        "core-capped"
    )
    # two core hosts consume side by side: their places add up
    assert step_limit("async", 400, 1000, 100, {}, [{"PREFETCH": "250"}] * 2).label == "open"
    # sync: the gateway calls the first core, whose POST /work places are WORK_MAX_CONCURRENT
    sync = step_limit("sync", 100, 1000, 1000, {}, [{"WORK_MAX_CONCURRENT": "50"}, {}])
    assert sync.label == "core-capped" and "the rest 503" in sync.explanation


def test_the_plan_lines_group_rates_by_label():
    raw = {
        "name": "t",
        "rates": [50, 100, 200, 400],
        "duration_s": 10,
        "max_vus": 150,
        "series": [{"label": "gevent"}, {"label": "gthread", "modes": ["sync"], "gateway": GTHREAD_2X8}],
    }
    steps = expand_steps(spec.apply_overrides(raw, {}))
    lines = describe_limits(steps, [planned(s) for s in steps])
    assert lines == [
        "  sync [gevent]: open 50, 100; client-capped 200, 400 (150 VUs x 1005 ms: ~149/s)",
        "  async [gevent]: open 50-400",
        # request order: at 200/s the 150 VUs run out before the 16 threads are reached
        "  sync [gthread]: gateway-capped 50, 100 (16 at once x 1005 ms: ~16/s); "
        "client-capped 200, 400 (150 VUs x 1005 ms: ~149/s)",
    ]


def test_fab_check_prints_the_labels(capsys):
    assert commands.check("seed", {}, None, spec_only=True) == 0
    out = capsys.readouterr().out.splitlines()
    at = out.index("limits (Little's law, documented defaults):")
    assert out[at + 1] == "  sync: open 50; client-capped 100-400 (100 VUs x 1005 ms: ~100/s)"
    assert out[at + 2] == "  async: open 50-400"
    assert all(len(line) <= 100 for line in out[at:])


def test_the_provisioned_settings_change_the_labels():
    from offload_lab.run.connections import ProvisionedSettings

    steps = expand_steps(
        spec.apply_overrides({"name": "t", "rates": [200], "duration_s": 1, "max_vus": 1000}, {})
    )
    provisioned = ProvisionedSettings(gateway=GTHREAD_2X8, cores={"core1": {"PREFETCH": "100"}})
    lines = commands.plan_limits(steps, provisioned)
    assert lines[0] == "limits (Little's law, provisioned settings):"
    assert lines[1].startswith("  sync: gateway-capped 200") and lines[2].startswith(
        "  async: core-capped 200"
    )


def test_measured_median_from_a_k6_summary():
    assert measured_median_ms({"metrics": {"http_req_duration": {"values": {"med": 3.5}}}}) == 3.5
    assert measured_median_ms({"metrics": {}}) is None and measured_median_ms({}) is None


@pytest.mark.parametrize(
    "mode, label, source", [("sync", "open", "estimate"), ("async", "client-capped", "measured median")]
)
def test_every_step_file_records_its_limit(tmp_path, mode, label, source):
    raw = {"name": "t", "rates": [50], "duration_s": 1, "max_vus": 60, "modes": [mode], "cooldown_s": 0}
    s = spec.apply_overrides(raw, {})
    steps = expand_steps(s)
    k6 = FakeK6(load_s=0.05)  # its summary's median is 1001 ms: 50/s x 1.001 s fits 60 VUs
    if mode == "async":
        steps = [dataclasses.replace(step, max_vus=40, pre_allocated_vus=40) for step in steps]
    lab = SweepServices(
        k6=k6,
        core=FakeCore(),
        gateway=GatewaySettings(
            RecordingRemote(), "http://gw:8000", healthy=lambda u: True, sleep=lambda s: None
        ),
        cpu=FakeCpu(),
        queue_depth=FakeQueue(k6, drain_after_s=0.05),
        sample_interval_s=0.05,
    )
    folder = RunFolder(tmp_path / "results", "20260101-000000-t")
    assert Sweep(s, steps, lab, folder, {}, lambda line: None).run(RunRecord()) == "complete"
    data = json.loads((folder.path / "steps" / steps[0].filename).read_text())
    limit = data["limit"]
    assert limit["label"] == label and limit["latency_source"] == source
    assert set(limit["needs"]) == set(limit["capacities"]) == {"client", "gateway", "core"}
    assert limit["capacities"]["client"] == steps[0].max_vus and limit["explanation"]


def test_open_spec_never_caps_the_client_and_gthread_caps_only_sync():
    s = spec.load("open")
    steps = expand_steps(s)
    assert max(s.rates) >= 800 and set(s.rates) >= {50, 100, 200, 400}
    labels = {(st.label, st.mode, st.rate): planned(st).label for st in steps}
    assert "client-capped" not in labels.values()
    for (series, mode, rate), label in labels.items():
        expected = "gateway-capped" if (series, mode) == ("gthread", "sync") else "open"
        assert label == expected, (series, mode, rate)
    assert steps[0].gateway["GUNICORN_WORKER_CLASS"] == "gevent" and steps[0].core == {"PREFETCH": "1000"}
    # 10 s steps: load, cooldowns and a generous 10 s of start-up, drain or timeouts each: <= 15 min
    assert s.duration_s == 10 and len(steps) * (s.duration_s + s.cooldown_s + 10) <= 15 * 60


def test_backlog_spec_is_core_capped_at_400_and_open_at_50():
    steps = expand_steps(spec.load("backlog"))
    assert {st.mode for st in steps} == {"async"}
    limits = {st.rate: planned(st) for st in steps}
    assert limits[50].label == "open" and limits[400].label == "core-capped"
    assert limits[400].capacities["core"] == 100 and "backlog grows ~300/s" in limits[400].explanation
