"""The step loop against fakes of every remote call: the run folder per docs/result-format.md,
run.json status, interruption, gateway settings switching, bounded drain waiting."""

from __future__ import annotations

import json
import time

import pytest
from sweep_fakes import FakeCore, FakeCpu, FakeK6, FakeQueue, RecordingRemote

from offload_lab.plan import spec as spec_mod
from offload_lab.plan.steps import expand_steps
from offload_lab.records import RunRecord, read_step
from offload_lab.run.results import RunFolder, newest_run
from offload_lab.run.step_parts import headline
from offload_lab.run.sweep import Sweep, SweepServices, effective_gateway
from offload_lab.services.gateway import SWEEP_ENV, GatewaySettings

BASE = {
    "name": "t",
    "rates": [50, 100],
    "duration_s": 1,
    "max_vus": 100,
    "cooldown_s": 0,
    "drain_timeout_s": 2,
}


def build(tmp_path, raw=None, k6=None, queue_kw=None, gw_remote=None, sleep=None):
    spec = spec_mod.apply_overrides(raw or BASE, {})
    steps = expand_steps(spec)
    k6 = k6 or FakeK6()
    remote = gw_remote or RecordingRemote()
    gateway = GatewaySettings(remote, "http://gw:8000", healthy=lambda url: True, sleep=lambda s: None)
    lab = SweepServices(
        k6=k6,
        core=FakeCore(),
        gateway=gateway,
        cpu=FakeCpu(),
        queue_depth=FakeQueue(k6, **(queue_kw or {})),
        host_groups={
            "lab-broker": "broker",
            "lab-gateway": "gateway",
            "lab-core": "core",
            "lab-loadgen": "loadgen",
        },
        sample_interval_s=0.05,
        sleep=sleep or time.sleep,
    )
    folder = RunFolder(tmp_path / "results", "20260101-000000-t")
    lines = []
    sweep = Sweep(
        spec, steps, lab, folder, {"PUBLISHER": "kombu_pool", "AMQP_URL": "amqp://u:p@h/v"}, lines.append
    )
    return sweep, lab, folder, remote, lines


META = RunRecord(spec_name="t", overrides={})


def load(path):
    return json.loads(path.read_text())


def test_complete_run_writes_the_result_format(tmp_path):
    sweep, lab, folder, remote, lines = build(tmp_path)
    assert sweep.run(META) == "complete"
    run = load(folder.path / "run.json")
    assert run["schema_version"] == 1 and run["run_id"] == "20260101-000000-t"
    assert run["status"] == "complete" and run["ended_at"] and run["started_at"]
    assert run["steps"] == ["01-sync-50.json", "02-async-50.json", "03-sync-100.json", "04-async-100.json"]
    assert run["timing"]["wall_s"] > 0 and len(run["timing"]["steps"]) == 4

    data = load(folder.path / "steps" / "02-async-50.json")
    assert data["schema_version"] == 1
    st = data["step"]
    assert (st["index"], st["mode"], st["rate"], st["duration_s"]) == (2, "async", 50, 1)
    assert (st["pre_allocated_vus"], st["max_vus"], st["work_ms"], st["label"]) == (100, 100, 1000, "async")
    # effective gateway settings: documented defaults < provisioned gateway.env; no secrets
    assert st["gateway"]["PUBLISHER"] == "kombu_pool" and st["gateway"]["GUNICORN_WORKER_CLASS"] == "gevent"
    assert "AMQP_URL" not in st["gateway"]
    for key in ("started_at", "load_ended_at", "ended_at"):
        assert data[key]
    assert "p(99)" in data["k6"]["metrics"]["http_req_duration"]["values"]
    assert data["core"]["completed"] == 10
    b = data["broker"]
    assert b["queue"] == "tasks" and b["peak"] == 40 and b["drained"] is True
    assert b["samples"][0][0] < 0.1 and all(len(s) == 2 for s in b["samples"])
    assert b["load_end_s"] > 0 and 0.1 <= b["drain_s"] < 1.0
    assert b["dead_letter_depth"] == 0
    assert data["hosts"]["lab-gateway"] == {"group": "gateway", "cpu_pct": 25.0, "cpus": 2}
    # the per-second evidence: one time axis (t0) for queue, CPU and k6 samples
    clock = data["clock"]
    assert clock["t0_unix_s"] <= clock["load_started_unix_s"] <= clock["load_ended_unix_s"]
    cpu = data["hosts_timeline"]
    assert cpu["interval_s"] == 0.05 and len(cpu["samples"]) >= 4
    assert all(s[1]["lab-core"] == 25.0 for s in cpu["samples"])
    assert [s[0] for s in cpu["samples"]] == sorted(s[0] for s in cpu["samples"])
    assert data["samples"] == {"file": "samples/02-async-50.csv.gz", "rows": 1}
    assert (folder.path / "samples" / "02-async-50.csv.gz").is_file()

    assert lab.core.resets == 4
    starts, results = lines[0::2], lines[1::2]  # a line when a step starts, one when it ends
    assert starts[1] == "step  2/4 async   50/s: 1 s of load, then up to 2 s for the queue to drain ..."
    assert starts[0] == "step  1/4 sync    50/s: 1 s of load ..."
    lines = results
    assert len(lines) == 4 and lines[0].startswith("step  1/4 sync    50/s: avg 1001.5 ms, p95 1004.0 ms")
    assert "throughput 50.0/s, dropped 0.0 %" in lines[0] and "backlog peak -" in lines[0]  # sync: no queue
    assert "backlog peak 40 (drain" in lines[1]
    assert remote.restarts == 0  # no gateway settings in the spec: nothing switched
    assert newest_run(tmp_path / "results") == folder.path


def test_headline_dropped_and_throughput(tmp_path):
    sweep, lab, folder, remote, lines = build(tmp_path, k6=FakeK6(dropped={3: 30}))
    sweep.run(META)
    m = headline(read_step(folder.path / "steps" / "03-sync-100.json"))  # the report's own figures
    assert m.drop_rate == pytest.approx(0.30)  # 70 iterations + 30 dropped
    assert m.throughput == pytest.approx(70.0)
    assert "dropped 30.0 %" in lines[5]  # step 3 ends (every step also has a start line)


def test_interrupt_keeps_finished_steps(tmp_path):
    k6 = FakeK6(interrupt_at=3)
    raw = {**BASE, "gateway": {"PUBLISH_CONFIRM": 0}}
    sweep, lab, folder, remote, lines = build(tmp_path, raw=raw, k6=k6)
    assert sweep.run(META) == "interrupted"
    run = load(folder.path / "run.json")
    assert run["status"] == "interrupted" and run["ended_at"]
    assert run["steps"] == ["01-sync-50.json", "02-async-50.json"]
    assert sorted(p.name for p in (folder.path / "steps").iterdir()) == run["steps"]  # no partial files
    assert k6.stopped == 1 and k6.ran == [1, 2, 3]
    # the gateway is back on its provisioned settings
    assert SWEEP_ENV not in remote.files and remote.restarts == 2
    assert any("interrupted" in line for line in lines)


def test_failure_is_recorded(tmp_path):
    sweep, lab, folder, remote, lines = build(tmp_path, k6=FakeK6(fail_at=2))
    assert sweep.run(META) == "failed"
    run = load(folder.path / "run.json")
    assert run["status"] == "failed" and "k6 exited 107" in run["error"]
    assert run["steps"] == ["01-sync-50.json"]


def test_gateway_settings_applied_only_when_they_differ(tmp_path):
    raw = {
        "name": "p",
        "rates": [50, 100],
        "duration_s": 1,
        "max_vus": 10,
        "cooldown_s": 0,
        "drain_timeout_s": 1,
        "order": "by_series",
        "gateway": {"GUNICORN_WORKER_CLASS": "gthread"},
        "series": [
            {"label": "pika_shared", "modes": ["async"], "gateway": {"PUBLISHER": "pika_shared"}},
            {"label": "kombu_pool", "modes": ["async"], "gateway": {"PUBLISHER": "kombu_pool"}},
        ],
    }
    remote = RecordingRemote(sweep_file_exists=True)  # left over by a killed sweep
    sweep, lab, folder, remote, lines = build(tmp_path, raw=raw, gw_remote=remote)
    written = []
    orig_put = remote.put_text

    def put(text, path, mode=None, sudo=False):
        written.append(text)
        orig_put(text, path, mode, sudo)

    remote.put_text = put
    assert sweep.run(META) == "complete"
    # begin (leftover removed) + pika_shared + kombu_pool + restore at the end = 4 restarts
    assert remote.restarts == 4
    assert all(remote.as_root), "the sweep file and the gateway unit are root's"
    assert len(written) == 2
    assert "PUBLISHER=pika_shared" in written[0] and "GUNICORN_WORKER_CLASS=gthread" in written[0]
    assert "PUBLISHER=kombu_pool" in written[1]
    assert SWEEP_ENV not in remote.files
    step = load(folder.path / "steps" / "01-async-50.json")["step"]
    assert step["label"] == "pika_shared" and step["gateway"]["PUBLISHER"] == "pika_shared"
    assert step["gateway_overrides"] == {"GUNICORN_WORKER_CLASS": "gthread", "PUBLISHER": "pika_shared"}
    t = load(folder.path / "run.json")["timing"]["steps"]
    assert t[0]["gateway_restart_s"] >= 0 and t[1]["gateway_restart_s"] == 0.0


def test_drain_wait_is_bounded(tmp_path):
    raw = {**BASE, "rates": [50], "modes": ["async"], "drain_timeout_s": 0.3}
    sweep, lab, folder, remote, lines = build(tmp_path, raw=raw, queue_kw={"drain_after_s": None})
    start = time.monotonic()
    assert sweep.run(META) == "complete"
    assert time.monotonic() - start < 2
    b = load(folder.path / "steps" / "01-async-50.json")["broker"]
    assert b["drained"] is False and b["drain_s"] is None and b["peak"] == 40
    assert "drain never" in lines[1]


def test_cooldown_between_steps_only(tmp_path):
    slept = []
    sweep, lab, folder, remote, lines = build(tmp_path, raw={**BASE, "cooldown_s": 3}, sleep=slept.append)
    sweep.run(META)
    assert slept == [3, 3, 3]


def test_effective_gateway():
    assert effective_gateway({"PUBLISHER": "pika_shared", "AMQP_URL": "x"}, {"PUBLISH_CONFIRM": "0"})[
        "PUBLISHER"
    ] == ("pika_shared")
    assert effective_gateway({}, {})["GUNICORN_WORKERS"] == "2"


def test_existing_run_folder_is_not_overwritten(tmp_path):
    sweep, lab, folder, remote, lines = build(tmp_path)
    sweep.run(META)
    again = RunFolder(tmp_path / "results", "20260101-000000-t")
    with pytest.raises(FileExistsError):
        again.create(RunRecord())


def test_samples_that_cannot_be_pulled_leave_the_step_intact(tmp_path):
    class NoSamples(FakeK6):
        def pull_samples(self, step, local_path):
            raise OSError("connection reset")

    sweep, lab, folder, remote, lines = build(tmp_path, k6=NoSamples())
    assert sweep.run(META) == "complete"
    data = load(folder.path / "steps" / "01-sync-50.json")
    assert data["samples"] is None and data["k6"]["metrics"]
    assert any("per-request samples not kept (connection reset)" in line for line in lines)


def test_repeated_run_names_each_repeat(tmp_path):
    sweep, lab, folder, remote, lines = build(tmp_path, raw={**BASE, "rates": [50], "repeat": 2})
    assert sweep.run(META) == "complete"
    run = load(folder.path / "run.json")
    assert run["steps"] == [
        "01-sync-50-r1.json",
        "02-async-50-r1.json",
        "03-sync-50-r2.json",
        "04-async-50-r2.json",
    ]
    assert load(folder.path / "steps" / "04-async-50-r2.json")["step"]["repeat"] == 2
