"""Two real k6 processes (.venv/bin/k6) on loopback as two load generators: complementary
execution segments, started paused and resumed together, their results merged; a k6 that fails
or times out is stopped where it runs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sweep_fakes import LocalRemote

from offload_lab.analysis.samples import latency_stats, read_samples
from offload_lab.hosts.remote import RemoteError
from offload_lab.loadgen import k6 as k6_mod
from offload_lab.loadgen import k6_merge
from offload_lab.loadgen.k6_fleet import K6Fleet, k6_for_loadgens
from offload_lab.plan.steps import PlannedStep

K6 = shutil.which("k6", path=str(Path(sys.executable).parent)) or shutil.which("k6")
assert K6, "k6 binary not installed: run scripts/install-deps.sh"


def step(rate=40, duration_s=3, vus=10, index=1, mode="async"):
    return PlannedStep(
        index=index,
        mode=mode,
        rate=rate,
        duration_s=duration_s,
        pre_allocated_vus=vus,
        max_vus=vus,
        work_ms=10,
        label=mode,
        request_timeout_s=2,
    )


class Loadgen(LocalRemote):
    """A loadgen host on this machine: its own name and login user (so its own k6 folder)."""

    def __init__(self, name):
        super().__init__()
        self.host = type("H", (), {"name": name, "address": "127.0.0.1", "user": name})()

    def run(self, command, check=True, timeout=None, sudo=False):
        try:
            return super().run(command, check, timeout, sudo)
        except subprocess.TimeoutExpired as exc:  # as Remote says a timed-out SSH command
            raise RemoteError(f"{self.host.name}: timed out after {timeout} s") from exc

    def get_file(self, remote_path, local_path):
        shutil.copyfile(remote_path, local_path)

    def fresh(self):
        return Loadgen(self.host.name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fleet(base_url, names=("lg1", "lg2"), k6_bins=None):
    n = len(names)
    sequence = k6_merge.segment_sequence(n)
    generators = [
        k6_mod.RemoteK6(
            Loadgen(name),
            "run-f",
            base_url,
            k6_bin=(k6_bins or {}).get(name, K6),
            segment=k6_mod.Segment(k6_merge.execution_segment(i, n), sequence, f"127.0.0.1:{free_port()}"),
        )
        for i, name in enumerate(names)
    ]
    return K6Fleet(generators, ready_timeout_s=30)


@pytest.fixture
def remote_base(tmp_path, monkeypatch):
    monkeypatch.setattr(k6_mod, "REMOTE_BASE", str(tmp_path / "remote"))
    return tmp_path / "remote"


def test_one_loadgen_is_a_plain_k6(http_target):
    k6 = k6_for_loadgens([Loadgen("lg1")], "run", http_target.base_url)
    assert isinstance(k6, k6_mod.RemoteK6) and k6.segment is None
    assert "--paused" not in k6.command(step())  # today's command line
    both = k6_for_loadgens([Loadgen("lg1"), Loadgen("lg2")], "run", http_target.base_url)
    assert [g.segment.segment for g in both.generators] == ["0:1/2", "1/2:1"]
    assert "--execution-segment-sequence 0,1/2,1" in both.generators[1].command(step())


def test_two_generators_start_together_and_their_counts_add_up(http_target, remote_base, tmp_path):
    k6 = fleet(http_target.base_url)
    assert k6.version().startswith("k6 v")
    k6.prepare()
    st = step(rate=40, duration_s=3)
    merged = k6.run(st)
    generators = merged["offload"]["generators"]
    assert [g["host"] for g in generators] == ["lg1", "lg2"]
    assert [g["segment"] for g in generators] == ["0:1/2", "1/2:1"]
    counts = [g["summary"]["metrics"]["http_reqs"]["values"]["count"] for g in generators]
    total = merged["metrics"]["http_reqs"]["values"]["count"]
    assert total == sum(counts) and min(counts) > 0
    assert abs(counts[0] - counts[1]) <= 1  # each ran half of the iterations
    assert 118 <= total <= 121  # 40/s x 3 s
    assert merged["metrics"]["iterations"]["values"]["count"] == total
    assert len(http_target.bodies) == total  # the server saw every request once
    ids = [json.loads(body)["id"] for _, body in http_target.bodies]
    assert len(set(ids)) == total  # k6's iterationInTest: unique across segments
    resumed = [g["resumed_unix_s"] for g in generators]
    assert max(resumed) - min(resumed) < k6_merge.LATE_START_S  # resumed together

    path = tmp_path / "run" / "samples" / "01-async-40.csv.gz"
    rows = k6.pull_samples(st, path)
    samples = read_samples(path)
    assert samples.count == total and rows >= total
    assert samples.generators == ("lg1", "lg2")
    assert sorted(path.parent.iterdir()) == [path]  # the per-generator files are gone
    k6_merge.with_sample_trend(merged, samples)
    trend = merged["metrics"]["http_req_duration"]["values"]
    assert trend["p(95)"] == pytest.approx(latency_stats(samples)["p95"])
    assert k6_merge.flag_generators(merged, samples, {}, st.rate, st.max_vus) == []
    k6.cleanup()
    assert not (remote_base.with_name("remote-lg1") / "run-f").exists()


def test_a_failing_generator_stops_the_others(http_target, remote_base):
    k6 = fleet(http_target.base_url, k6_bins={"lg2": "/nonexistent/k6"})
    k6.prepare()
    start = time.monotonic()
    with pytest.raises(k6_mod.K6Error, match="lg2"):
        k6.run(step(duration_s=60))
    assert time.monotonic() - start < 30
    assert not (remote_base.with_name("remote-lg1") / "run-f" / "k6.pid").exists()  # lg1 stopped


def test_a_timed_out_k6_is_stopped_on_its_host(http_target, remote_base, monkeypatch):
    runner = k6_mod.RemoteK6(Loadgen("lg1"), "run-t", http_target.base_url, k6_bin=K6)
    runner.prepare()
    monkeypatch.setattr(runner, "time_limit_s", lambda st: 3)  # the SSH call gives up after 3 s
    pid_file = remote_base.with_name("remote-lg1") / "run-t" / "k6.pid"
    with pytest.raises(k6_mod.K6Error, match="timed out.*k6 on lg1: (stopped|killed)"):
        runner.run(step(duration_s=60))
    assert not pid_file.exists() or not _alive(int(pid_file.read_text()))
    assert len(http_target.bodies) < 40 * 10  # it did not go on for the step's 60 s


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_an_interrupted_fleet_hands_back_its_partial_summaries(http_target, remote_base):
    k6 = fleet(http_target.base_url)
    k6.prepare()
    st = step(duration_s=60)
    for g in k6.generators:
        g.start(st)
    k6._wait_ready()
    k6._each(lambda g: g.resume())
    time.sleep(1.5)
    partial = k6.stop()  # as the sweep does on Ctrl-C / SIGTERM
    assert partial is not None and partial["offload"]["interrupted"] is True
    generators = partial["offload"]["generators"]
    counts = [g["summary"]["metrics"]["http_reqs"]["values"]["count"] for g in generators]
    assert partial["metrics"]["http_reqs"]["values"]["count"] == sum(counts) > 0
    assert sum(counts) < 40 * 10


def test_requests_are_spread_over_the_gateways(http_target, second_target, remote_base):
    k6 = fleet(f"{http_target.base_url},{second_target.base_url}")
    k6.prepare()
    merged = k6.run(step(rate=40, duration_s=2))
    total = merged["metrics"]["http_reqs"]["values"]["count"]
    seen = [len(http_target.bodies), len(second_target.bodies)]
    assert sum(seen) == total and abs(seen[0] - seen[1]) <= 2  # round-robin
    # each generator (iterations of one parity: k6 stripes them) reached both gateways
    for target in (http_target, second_target):
        parities = {int(json.loads(body)["id"].rsplit("-", 1)[1]) % 2 for _, body in target.bodies}
        assert parities == {0, 1}
    assert merged["offload"]["url"] == [f"{http_target.base_url}/async", f"{second_target.base_url}/async"]
