"""Smaller parts: CPU counters, settings files and secrets, core stats over several hosts, the
queue sampler, Ctrl-C delivery, newest run, and `fab sweep`'s command path with a fake lab."""

from __future__ import annotations

import _thread
import json
import signal
import threading
import time
from types import SimpleNamespace

import pytest
from sweep_fakes import FakeCore, FakeCpu, FakeK6, FakeQueue, RecordingRemote

from offload_lab.cli import commands, run_start
from offload_lab.cli.usage import UsageError
from offload_lab.hosts.remote import format_env_file, mask_secrets, parse_env_file
from offload_lab.loadgen.k6 import call_interruptibly
from offload_lab.run.connections import PasswordError, ProvisionedSettings, read_password
from offload_lab.run.results import newest_run
from offload_lab.run.sweep import SweepServices
from offload_lab.services.broker import QueueSampler
from offload_lab.services.core import merge_stats
from offload_lab.services.cpu import CPU_COMMAND, cpu_pct, parse_cpu
from offload_lab.services.gateway import GatewaySettings


def test_cpu_counters():
    a = parse_cpu("cpu  100 0 50 800 50 0 0 0 0 0\n2\n")
    b = parse_cpu("cpu  200 0 100 1100 100 0 0 0 0 0\n2\n")
    assert a == {"busy": 150, "total": 1000, "cpus": 2}
    assert cpu_pct(a, b) == pytest.approx(100 * 150 / 500)
    assert cpu_pct(a, a) is None


def test_cpu_from_a_containers_cgroup():
    # 0.5 s of CPU over 2 s of uptime on a host pinned to 1 CPU: 25 %
    a = parse_cpu("cgroup 1000000 100.00\n1\n")
    b = parse_cpu("cgroup 1500000 102.00\n1\n")
    assert cpu_pct(a, b) == pytest.approx(25.0)
    assert b["cpus"] == 1


def test_cpu_command_runs_here():
    import subprocess

    out = subprocess.run(["sh", "-c", CPU_COMMAND], capture_output=True, text=True, check=True).stdout
    assert parse_cpu(out)["total"] > 0
    with pytest.raises(Exception, match="unexpected CPU counters"):
        parse_cpu("garbage")


def test_env_files_and_secrets():
    text = '# provisioned\nAMQP_URL=amqp://offload:s3cr3t@10.77.77.11:5672/offload\nPUBLISHER="kombu_pool"\n\nX_PASSWORD=p\n'
    env = parse_env_file(text)
    assert env["PUBLISHER"] == "kombu_pool"
    masked = mask_secrets(env)
    assert masked["AMQP_URL"] == "amqp://offload:***@10.77.77.11:5672/offload"
    assert masked["X_PASSWORD"] == "***"
    assert "s3cr3t" not in json.dumps(masked)
    assert parse_env_file(format_env_file({"B": "2", "A": "1"})) == {"A": "1", "B": "2"}
    assert parse_env_file(None) == {}


def test_core_stats_summed_over_hosts():
    a = {
        "received": 10,
        "completed": 8,
        "failed": 1,
        "dead_lettered": 1,
        "in_flight": 1,
        "work_requests": 0,
        "completion_latency_ms": {
            "count": 8,
            "avg": 1000,
            "p50": 1000,
            "p95": 1010,
            "p99": 1020,
            "max": 1100,
        },
        "since": "2026-01-01T00:00:01Z",
    }
    b = {
        "received": 5,
        "completed": 5,
        "failed": 0,
        "dead_lettered": 0,
        "in_flight": 0,
        "work_requests": 3,
        "completion_latency_ms": {
            "count": 2,
            "avg": 2000,
            "p50": 2000,
            "p95": 2000,
            "p99": 2000,
            "max": 2000,
        },
        "since": "2026-01-01T00:00:00Z",
    }
    m = merge_stats({"c1": a, "c2": b})
    assert (m["received"], m["completed"], m["dead_lettered"], m["in_flight"], m["work_requests"]) == (
        15,
        13,
        1,
        1,
        3,
    )
    assert m["completion_latency_ms"]["count"] == 10 and m["completion_latency_ms"]["avg"] == pytest.approx(
        1200
    )
    assert m["completion_latency_ms"]["p99"] == 2000 and m["since"] == "2026-01-01T00:00:00Z"
    assert set(m["per_host"]) == {"c1", "c2"}
    assert "per_host" not in merge_stats({"c1": a})


def test_sampler_samples_at_once_when_load_ends():
    depths = iter([5, 5, 0, 0, 0])
    s = QueueSampler(
        lambda: next(depths, 0), "tasks", interval_s=10
    )  # the 1 s rhythm would take far too long
    s.start()
    time.sleep(0.05)
    s.load_ended()  # immediate sample: 5, not yet drained
    time.sleep(0.05)
    assert not s.wait_drained(0.05)
    r = s.report()
    assert r["peak"] == 5 and r["drain_s"] is None and r["drained"] is False


def test_sampler_drains_and_survives_errors():
    calls = {"n": 0}

    def depth():
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("management API hiccup")
        return 3 if calls["n"] < 4 else 0

    s = QueueSampler(depth, "tasks", interval_s=0.02, idle=lambda: True)
    s.start()
    time.sleep(0.03)
    s.load_ended()
    assert s.wait_drained(2)
    r = s.report()
    assert r["drained"] and r["drain_s"] is not None and r["sample_errors"] == 1
    assert [1 for s in r["samples"] if s[1] is None] == [1]


def test_sampler_tells_backlog_from_work_in_flight():
    from offload_lab.services.broker import QueueDepth

    depths = iter([QueueDepth(ready=0, unacked=40), QueueDepth(ready=25, unacked=50), QueueDepth(0, 0)])
    s = QueueSampler(lambda: next(depths, QueueDepth(0, 0)), "tasks", interval_s=0.02, idle=lambda: True)
    s.start()
    time.sleep(0.05)
    s.load_ended()
    assert s.wait_drained(2)
    r = s.report()
    assert (r["peak"], r["peak_ready"], r["peak_unacked"]) == (75, 25, 50)
    assert r["samples"][1][1:] == [75, 25]


def test_sampler_waits_for_idle_core():
    busy = {"v": True}
    s = QueueSampler(lambda: 0, "tasks", interval_s=0.02, idle=lambda: not busy["v"])
    s.start()
    s.load_ended()
    time.sleep(0.1)
    assert s.report()["drained"] is False
    busy["v"] = False
    assert s.wait_drained(2)


def test_ctrl_c_reaches_a_blocking_call():
    # Python's own Ctrl-C handler, whatever this process inherited: a shell starts background jobs
    # with SIGINT ignored, and interrupt_main() then does nothing (fab sets it back itself:
    # test_sweep_signals.py)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.2, _thread.interrupt_main).start()
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            call_interruptibly(time.sleep, 5)
        assert time.monotonic() - start < 2
    finally:
        signal.signal(signal.SIGINT, previous)


def test_newest_run(tmp_path):
    assert newest_run(tmp_path) is None
    for name in ("20260101-000000-quick", "20260102-000000-seed", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "20260101-000000-quick" / "run.json").write_text("{}")
    (tmp_path / "20260102-000000-seed" / "run.json").write_text("{}")
    assert newest_run(tmp_path).name == "20260102-000000-seed"


def test_report_runs_the_analysis(tmp_path, monkeypatch):
    (tmp_path / "20260101-000000-quick").mkdir()
    (tmp_path / "20260101-000000-quick" / "run.json").write_text("{}")
    seen = []
    monkeypatch.setattr(
        commands.subprocess, "run", lambda args, cwd: seen.append(args) or SimpleNamespace(returncode=0)
    )
    assert commands.report(results_dir=str(tmp_path)) == 0
    assert seen[0][1:] == ["-m", "offload_lab.analysis", str(tmp_path / "20260101-000000-quick")]
    with pytest.raises(UsageError, match="--run"):
        commands.report(run_dir=str(tmp_path / "nope"))
    with pytest.raises(UsageError, match="no run folder"):
        commands.report(results_dir=str(tmp_path / "empty"))


# ------------------------------------------------------------------ `fab sweep` with a fake lab


class FakeConnections:
    problems: list[str] = []
    instances: list = []

    def __init__(self, inv, run_id, password):
        self.inv = inv
        self.password = password
        k6 = FakeK6(load_s=0.05)
        k6.version = lambda: "k6 v1.1.0 (fake)"
        k6.prepare = lambda: None
        k6.cleanup = lambda: None
        self.k6 = k6
        self.mgmt = SimpleNamespace(base_url="http://broker:15672", version=lambda: "3.10.8")
        self.closed = False
        FakeConnections.instances.append(self)

    def preflight(self):
        return list(self.problems)

    def settings(self):
        raw = {"AMQP_URL": "amqp://offload:pw@b:5672/offload", "PUBLISHER": "kombu_pool"}
        return ProvisionedSettings(gateway=raw, cores={"lab-core": {"WORK_MS": "1000"}})

    def hosts_with_cpus(self):
        return {
            g: [{"name": h.name, "address": h.address, "cpus": 2} for h in hs]
            for g, hs in self.inv.groups.items()
        }

    def sweep_services(self):
        gw = GatewaySettings(RecordingRemote(), "http://gw:8000", healthy=lambda u: True)
        return SweepServices(
            k6=self.k6,
            core=FakeCore(),
            gateway=gw,
            cpu=FakeCpu(),
            queue_depth=FakeQueue(self.k6),
            sample_interval_s=0.02,
        )

    def close(self):
        self.closed = True


@pytest.fixture
def fake_lab(monkeypatch):
    monkeypatch.setattr(run_start, "LabConnections", FakeConnections)
    monkeypatch.setenv("OFFLOAD_RABBITMQ_PASSWORD", "pw")
    FakeConnections.problems = []
    FakeConnections.instances = []
    return FakeConnections


def test_cli_sweep_writes_run_json(fake_lab, inventory_dir, tmp_path):
    opts = {"rates": "50", "duration": "1", "cooldown": "0", "drain_timeout": "1"}
    code = commands.sweep("quick", opts, str(inventory_dir), str(tmp_path / "res"), "20260101-000000-quick")
    assert code == 0
    run = json.loads((tmp_path / "res/20260101-000000-quick/run.json").read_text())
    assert run["status"] == "complete" and run["spec_name"] == "quick"
    assert run["overrides"] == {"rates": [50], "duration_s": 1, "cooldown_s": 0, "drain_timeout_s": 1}
    assert run["spec"]["rates"] == [50] and run["spec"]["max_vus"] == 100
    assert len(run["git_commit"] or "x" * 40) == 40
    assert run["versions"]["k6"] == "k6 v1.1.0 (fake)" and run["versions"]["rabbitmq"] == "3.10.8"
    assert run["versions"]["ansible_core"].startswith("2.19") and run["versions"]["fabric"]
    assert run["hosts"]["core"][1] == {"name": "lab-core2", "address": "10.99.0.15", "cpus": 2}
    assert run["settings"]["gateway"]["AMQP_URL"] == "amqp://offload:***@b:5672/offload"
    assert "pw@" not in json.dumps(run)
    assert run["steps"] == ["01-sync-50.json", "02-async-50.json"]
    assert fake_lab.instances[0].closed


def test_cli_sweep_stops_before_load_when_preflight_fails(fake_lab, inventory_dir, tmp_path):
    fake_lab.problems = ["gateway: http://10.77.77.12:8000/healthz does not answer"]
    with pytest.raises(UsageError, match="healthz") as info:
        commands.sweep("quick", {}, str(inventory_dir), str(tmp_path / "res"))
    assert info.value.code == 1
    assert not (tmp_path / "res").exists()


def test_cli_sweep_bad_override_sends_nothing(fake_lab, inventory_dir, tmp_path):
    with pytest.raises(UsageError, match=r"max_vus \(--max-vus\)") as info:
        commands.sweep("quick", {"max_vus": "0"}, str(inventory_dir), str(tmp_path / "res"))
    assert info.value.code == 2
    assert not fake_lab.instances


def test_missing_password_file(tmp_path, monkeypatch):
    monkeypatch.delenv("OFFLOAD_RABBITMQ_PASSWORD", raising=False)
    with pytest.raises(PasswordError, match="rabbitmq_password"):
        read_password(tmp_path / ".secrets" / "rabbitmq_password")


def test_remote_errors_are_wrapped():
    from offload_lab.hosts.inventory import InventoryHost
    from offload_lab.hosts.remote import Remote, RemoteError

    r = Remote(InventoryHost("nobody", "core", "127.0.0.1", port=1), connect_timeout=2)  # refused at once
    with pytest.raises(RemoteError, match="nobody"):
        r.run("true")
    r.close()


def test_drain_time_comes_from_the_cores_last_ack():
    from offload_lab.run.step_parts import precise_drain

    broker = {"drained": True, "drain_s": 3.0}
    precise_drain(broker, {"last_done_at_ns": 101_250_000_000}, load_end_wall_s=100.0)
    assert broker == {"drained": True, "drain_s": 1.25, "drain_observed_s": 3.0}
    # a queue that never drained keeps "never"; a sync step (no task) keeps the sampled value
    never = {"drained": False, "drain_s": None}
    precise_drain(never, {"last_done_at_ns": 101_000_000_000}, load_end_wall_s=100.0)
    assert never["drain_s"] is None
    sync = {"drained": True, "drain_s": 0.0}
    precise_drain(sync, {"last_done_at_ns": 0}, load_end_wall_s=100.0)
    assert sync["drain_s"] == 0.0


def test_merge_stats_keeps_the_latest_done_time():
    merged = merge_stats({"a": {"last_done_at_ns": 5}, "b": {"last_done_at_ns": 9}})
    assert merged["last_done_at_ns"] == 9
