"""The sweep's own instruments as settings (offload_lab/plan/instruments.py): checked before any load,
planned per series, switched per step (samples, host sampling, the ledger's destination), and
recorded in every step file, run.json and the report header; the calibration point each run
records first (offload_lab/run/calibration.py)."""

from __future__ import annotations

import json

import pytest
from sweep_fakes import FakeCore, FakeCpu, FakeK6, FakeQueue, RecordingRemote
from test_sweep_ledger import IdK6, Outcomes

from offload_lab.analysis.load import load_run
from offload_lab.analysis.run_header import calibration_line, instruments_text
from offload_lab.cli.commands import describe_plan
from offload_lab.loadgen.k6 import k6_args
from offload_lab.plan import spec as spec_mod
from offload_lab.plan.instruments import Instruments
from offload_lab.plan.overrides import parse_overrides
from offload_lab.plan.spec import SpecError
from offload_lab.plan.steps import expand_steps
from offload_lab.records import RunRecord
from offload_lab.run.calibration import calibrate, calibration_record, calibration_step
from offload_lab.run.results import RunFolder
from offload_lab.run.sweep import Sweep, SweepServices
from offload_lab.services.gateway import GatewaySettings

RAW = {"name": "i", "rates": [50], "duration_s": 1, "max_vus": 10, "cooldown_s": 0, "drain_timeout_s": 2}


def test_a_spec_sets_instruments_per_sweep_and_per_series():
    raw = {
        **RAW,
        "modes": ["async"],
        "instruments": {"samples": "off", "host_sampling_s": 2},
        "series": [
            {"label": "bare", "instruments": {"ledger": "off", "host_sampling_s": "off"}},
            {"label": "plain"},
        ],
    }
    bare, plain = expand_steps(spec_mod.apply_overrides(raw, {}))
    assert bare.instruments == Instruments(ledger="off", samples=False, host_sampling_s=0.0)
    assert plain.instruments == Instruments(ledger=None, samples=False, host_sampling_s=2.0)
    assert bare.core == {"LEDGER": "off"} and plain.core == {}  # unset: the provisioned ledger
    plan = describe_plan(spec_mod.apply_overrides(raw, {}), [bare, plain])
    assert (
        "instruments [bare]: ledger off; samples off; host sampling off; queue depth every 1 s; "
        "broker statistics as provisioned"
    ) in plan
    assert "instruments [plain]: ledger as provisioned; samples off; host sampling every 2 s" in plan


def test_bad_instrument_settings_stop_before_any_load_naming_the_setting():
    overrides = parse_overrides(
        {"instruments": "ledger=disk,samples=maybe,queue_sampling_s=0,broker_stats_s=fast"}
    )
    with pytest.raises(SpecError) as info:
        spec_mod.apply_overrides({**RAW, "series": [{"label": "x", "instruments": {"pace": 1}}]}, overrides)
    problems = "\n".join(info.value.problems)
    assert "instruments (--instruments).ledger: must be one of file, broker, off, got 'disk'" in problems
    assert "instruments (--instruments).samples: must be on or off, got 'maybe'" in problems
    assert "instruments (--instruments).queue_sampling_s: must be between 0.1 and 60.0, got 0.0" in problems
    assert "instruments (--instruments).broker_stats_s: must be a number, got 'fast'" in problems
    assert "series[0].instruments.pace: unknown instrument" in problems


def test_the_command_line_overrides_the_specs_instruments_key_by_key():
    raw = {**RAW, "instruments": {"samples": False, "ledger": "broker"}}
    spec = spec_mod.apply_overrides(raw, parse_overrides({"instruments": "ledger=file"}))
    assert spec.instruments == {"samples": False, "ledger": "file"}


def test_k6_writes_samples_only_when_they_are_on():
    assert "--out" in k6_args("loadtest.js", csv_path="/tmp/x.csv")
    assert "--out" not in k6_args("loadtest.js", csv_path=None)


class CountingK6(IdK6):
    def __init__(self):
        super().__init__(load_s=0.05)
        self.pulled = 0

    def pull_samples(self, step, local_path):
        self.pulled += 1
        return super().pull_samples(step, local_path)


def run_sweep(tmp_path, raw, provisioned_core=None, calibrate_fn=None):
    spec = spec_mod.apply_overrides(raw, {})
    k6 = CountingK6()
    readers = {"file": Outcomes([], [{"task_id": f"t-{i}", "outcome": "done"} for i in range(3)])}
    readers["broker"] = Outcomes()
    lab = SweepServices(
        k6=k6,
        core=FakeCore(),
        gateway=GatewaySettings(RecordingRemote(), "http://gw", healthy=lambda u: True, sleep=lambda s: None),
        cpu=FakeCpu(),
        queue_depth=FakeQueue(k6, drain_after_s=0.05),
        sample_interval_s=0.05,
        ledgers=readers,
        calibrate=calibrate_fn,
    )
    folder = RunFolder(tmp_path, "r")
    cores = [provisioned_core or {"LEDGER": "file"}]
    status = Sweep(spec, expand_steps(spec), lab, folder, {}, lambda m: None, provisioned_cores=cores).run(
        RunRecord(spec=spec.as_dict())
    )
    assert status == "complete"
    steps = {p.name: json.loads(p.read_text()) for p in sorted((folder.path / "steps").glob("*.json"))}
    return steps, k6, readers, folder


def test_each_step_switches_and_records_its_instruments(tmp_path):
    raw = {
        **RAW,
        "modes": ["async"],
        "series": [
            {"label": "all_on"},
            {"label": "all_off", "instruments": {"ledger": "off", "samples": "off", "host_sampling_s": 0}},
        ],
    }
    steps, k6, readers, folder = run_sweep(tmp_path, raw)
    on, off = steps["01-async-50.json"], steps["02-async-50.json"]
    assert on["step"]["instruments"] == {
        "ledger": "file", "samples": True, "host_sampling_s": 1.0, "queue_sampling_s": 1.0,
        "broker_stats_s": None,  # no broker settings here: as provisioned, unknown
    }  # fmt: skip
    assert on["ledger"]["accepted"] == 3 and on["ledger"]["lost"] == 0  # read from the core's files
    assert on["samples"]["rows"] == 4 and on["hosts_timeline"]["samples"] is not None
    assert off["step"]["instruments"]["ledger"] == "off" and off["step"]["core"]["LEDGER"] == "off"
    assert off["ledger"] is None and off["samples"] is None and off["hosts_timeline"] is None
    assert k6.pulled == 1 and readers["broker"].takes == 0  # the broker's queue was never read
    run = load_run(folder.path)
    assert instruments_text(run) == (
        "all_on: ledger file; samples on; host sampling every 1 s; queue depth every 1 s\n"
        "all_off: ledger off; samples off; host sampling off; queue depth every 1 s"
    )


def test_a_step_on_the_broker_ledger_reads_the_queue_not_the_files(tmp_path):
    raw = {**RAW, "modes": ["async"], "instruments": {"ledger": "broker", "samples": "off"}}
    steps, _, readers, _ = run_sweep(tmp_path, raw)
    (step,) = steps.values()
    assert step["step"]["instruments"]["ledger"] == "broker"
    assert readers["broker"].takes >= 2 and readers["file"].takes == 0  # before and after the step
    assert step["ledger"]["outcome_records"] == 0 and step["ledger"]["accepted"] is None  # no samples: no ids


def test_the_run_records_its_calibration_first(tmp_path):
    calls = []

    def fake_calibrate():
        calls.append("calibration")
        return {"endpoint": "POST /noop", "rate": 200, "duration_s": 10, "avg_ms": 1.5, "p95_ms": 2.25}

    _, _, _, folder = run_sweep(tmp_path, {**RAW, "modes": ["sync"]}, calibrate_fn=fake_calibrate)
    run = json.loads((folder.path / "run.json").read_text())
    assert calls == ["calibration"] and run["calibration"]["p95_ms"] == 2.25
    assert calibration_line(run["calibration"]) == "POST /noop at 200/s for 10 s: avg 1.5 ms, p95 2.25 ms"
    assert calibration_line(None).startswith("not recorded")


def test_the_calibration_is_a_fixed_noop_load_and_its_failure_is_recorded_not_raised():
    step = calibration_step()
    assert (step.mode, step.rate, step.duration_s, step.work_ms) == ("noop", 200, 10, 0)
    assert not step.instruments.samples and not step.instruments.host_sampling_s
    summary = {
        "metrics": {
            "http_req_duration": {"values": {"avg": 1.234, "med": 1.0, "p(95)": 2.5, "p(99)": 4.0}},
            "http_reqs": {"values": {"count": 1990}},
            "dropped_iterations": {"values": {"count": 10}},
            "http_req_failed": {"values": {"rate": 0.0}},
        }
    }
    record = calibration_record(summary)
    assert (record["avg_ms"], record["p95_ms"], record["p99_ms"]) == (1.234, 2.5, 4.0)
    assert record["dropped_pct"] == 0.5 and record["requests"] == 1990

    class BrokenK6(FakeK6):
        def run(self, step):
            raise RuntimeError("k6 exited 107 without a summary")

    assert "without a summary" in calibrate(BrokenK6())["error"]
