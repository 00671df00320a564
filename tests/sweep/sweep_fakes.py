"""Fakes of the sweep's remote collaborators (imported by the sweep tests and their conftest)."""

from __future__ import annotations

import gzip
import subprocess
import time
from pathlib import Path

from offload_lab.hosts.remote import Result


class LocalRemote:
    """Implements the part of offload_lab.hosts.remote.Remote that RemoteK6 uses, on this machine."""

    def __init__(self):
        self.commands: list[str] = []
        self.host = type("H", (), {"name": "local", "address": "127.0.0.1"})()

    def run(self, command, check=True, timeout=None, sudo=False):
        self.commands.append(command)
        p = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=timeout)
        return Result(p.stdout, p.stderr, p.returncode)

    def put_text(self, text, path, mode=None, sudo=False):
        Path(path).write_text(text)

    def read_text(self, path, missing_ok=True, sudo=False):
        try:
            return Path(path).read_text()
        except OSError:
            return None

    def fresh(self):
        return LocalRemote()

    def close(self):
        pass


def wait_until(predicate, timeout=5.0, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


# --------------------------------------------------------------------------------------------
# fakes of the sweep loop's collaborators


def fake_summary(step, dropped=0, failed=0):
    iterations = step.rate * step.duration_s - dropped
    metrics = {
        "iterations": {"type": "counter", "contains": "default", "values": {"count": iterations}},
        "http_reqs": {"type": "counter", "contains": "default", "values": {"count": iterations}},
        "http_req_failed": {"type": "rate", "contains": "default", "values": {"passes": failed}},
        "http_req_duration": {
            "type": "trend",
            "contains": "time",
            "values": {"avg": 1001.5, "med": 1001.0, "p(95)": 1004.0, "p(99)": 1009.0, "max": 1020.0},
        },
    }
    if dropped:
        metrics["dropped_iterations"] = {"type": "counter", "values": {"count": dropped}}
    return {"metrics": metrics, "offload": {"mode": step.mode, "rate": step.rate}}


class FakeK6:
    """Returns a made-up summary after `load_s`; raises `interrupt_at` (a step index) as Ctrl-C."""

    def __init__(self, load_s=0.15, interrupt_at=None, fail_at=None, dropped=None):
        self.load_s = load_s
        self.interrupt_at = interrupt_at
        self.fail_at = fail_at
        self.dropped = dropped or {}
        self.ran = []
        self.stopped = 0
        self.running = False
        self.load_ended_at = None

    def run(self, step):
        self.running = True
        try:
            self.ran.append(step.index)
            time.sleep(self.load_s)
            if step.index == self.interrupt_at:
                raise KeyboardInterrupt
            if step.index == self.fail_at:
                raise RuntimeError("k6 exited 107 without a summary")
            return fake_summary(step, dropped=self.dropped.get(step.index, 0))
        finally:
            self.running = False
            self.load_ended_at = time.monotonic()

    def stop(self):
        self.stopped += 1

    def pull_samples(self, step, local_path):
        """Writes what a k6 step's filtered samples look like: a header and one request."""
        local_path.parent.mkdir(parents=True, exist_ok=True)
        rows = "metric_name,timestamp,metric_value,expected_response,status\n"
        rows += "http_req_duration,1796290001234,2.5,true,202\n"
        with gzip.open(local_path, "wt") as fh:
            fh.write(rows)
        return 1


class FakeCore:
    def __init__(self):
        self.resets = 0
        self.completed = 0

    def reset(self):
        self.resets += 1

    def read(self):
        return {
            "received": 10,
            "completed": 10,
            "failed": 0,
            "dead_lettered": 0,
            "in_flight": 0,
            "work_requests": 0,
            "completion_latency_ms": {
                "count": 10,
                "avg": 1001,
                "p50": 1001,
                "p95": 1003,
                "p99": 1004,
                "max": 1005,
            },
        }

    def idle(self):
        return True


class FakeQueue:
    """Queue depth: `backlog` while k6 runs and for `drain_after_s` after it ends (None: never)."""

    def __init__(self, k6, backlog=40, drain_after_s=0.15):
        self.k6 = k6
        self.backlog = backlog
        self.drain_after_s = drain_after_s
        self.calls = []

    def __call__(self, queue):
        self.calls.append(queue)
        if queue == "tasks.dead":
            return 0
        if self.k6.running:
            return self.backlog
        end = self.k6.load_ended_at
        if end is None:
            return 0
        if self.drain_after_s is None or time.monotonic() - end < self.drain_after_s:
            return self.backlog // 2
        return 0


class FakeCpu:
    def __init__(self, hosts=("lab-broker", "lab-gateway", "lab-core", "lab-loadgen")):
        self.hosts = hosts
        self.calls = 0

    def snapshot(self):
        self.calls += 1
        # each call: +100 total jiffies, +25 busy  -> 25 %
        return {h: {"busy": 25 * self.calls, "total": 100 * self.calls, "cpus": 2} for h in self.hosts}

    def timeline(self, t0_unix_s, limit_s, interval_s=1.0):
        return FakeCpuTimeline(self.hosts, interval_s)


class FakeCpuTimeline:
    """Stands in for the per-second loops: one reading per interval while running, 25 % each."""

    def __init__(self, hosts, interval_s):
        self.hosts = hosts
        self.interval_s = interval_s
        self.started = None

    def start(self):
        self.started = time.monotonic()

    def stop(self):
        seconds = int((time.monotonic() - self.started) / self.interval_s)
        samples = [
            [round((i + 1) * self.interval_s, 3), dict.fromkeys(self.hosts, 25.0)] for i in range(seconds)
        ]
        return {"interval_s": self.interval_s, "samples": samples}


class RecordingRemote:
    """Stands in for a Remote on the gateway host: records commands and uploads, and which of
    them ran as root (`as_root`: the gateway's sweep file and unit are root's)."""

    def __init__(self, sweep_file_exists=False):
        self.commands = []
        self.as_root = []
        self.files = {}
        if sweep_file_exists:
            self.files["/etc/offload/gateway.sweep.env"] = "PUBLISHER=pika_shared\n"

    def run(self, command, check=True, timeout=None, sudo=False):
        self.commands.append(command)
        self.as_root.append(sudo)
        if command.startswith("test -e "):
            return Result("", "", 0 if command.split()[-1] in self.files else 1)
        if command.startswith("rm -f "):
            self.files.pop(command.split()[-1], None)
        return Result("", "", 0)

    def put_text(self, text, path, mode=None, sudo=False):
        self.commands.append(f"put {path}")
        self.as_root.append(sudo)
        self.files[path] = text

    @property
    def restarts(self):
        return sum(1 for c in self.commands if c.startswith("systemctl restart"))
