"""Per-request samples: the real k6 (.venv/bin/k6) writes its CSV on loopback, the same filter the
loadgen runs (offload_lab.loadgen.k6.filter_command, here through bash) keeps the rows of
docs/result-format.md, and offload_lab.analysis.samples computes from them the same latency figures as
k6's own summary. Also the remote wrapper's pull_samples, with a local stand-in for SSH."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sweep_fakes import LocalRemote

from offload_lab.analysis.samples import latency_stats, read_samples
from offload_lab.loadgen import k6 as k6_mod
from offload_lab.paths import K6_SCRIPT
from offload_lab.plan.steps import PlannedStep

K6 = shutil.which("k6", path=str(Path(sys.executable).parent)) or shutil.which("k6")
assert K6, "k6 binary not installed: run scripts/install-deps.sh"
HEADER = "metric_name,timestamp,metric_value,expected_response,status,task_id"


def step(mode="async", rate=50, duration_s=3, vus=20, index=1):
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


def run_k6(st: PlannedStep, base_url: str, tmp_path: Path) -> tuple[dict, Path]:
    """k6 with the loadgen's flags; returns its summary and the filtered samples file."""
    raw = tmp_path / "step.raw.csv"
    out = tmp_path / "step.csv.gz"
    summary_path = tmp_path / "summary.json"
    r = subprocess.run(
        [K6, *k6_mod.k6_args(str(K6_SCRIPT), csv_path=str(raw))],
        env={**os.environ, **k6_mod.k6_env(st, base_url, str(summary_path))},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert raw.is_file()
    f = subprocess.run(
        ["bash", "-c", k6_mod.filter_command(str(raw), str(out))], capture_output=True, text=True
    )
    assert f.returncode == 0, f.stderr
    assert out.is_file() and not raw.exists()  # the raw CSV is gone once filtered
    return json.loads(summary_path.read_text()), out


def k6_values(summary: dict, name: str) -> dict:
    return summary["metrics"][name]["values"]


def assert_same_latency(summary: dict, samples) -> None:
    mine = latency_stats(samples)
    theirs = k6_values(summary, "http_req_duration")
    for key, k6_key in (("avg", "avg"), ("med", "med"), ("p95", "p(95)"), ("p99", "p(99)"), ("max", "max")):
        assert mine[key] == pytest.approx(theirs[k6_key], rel=1e-9, abs=1e-6), key
    assert mine["min"] == pytest.approx(theirs["min"], rel=1e-9, abs=1e-6)
    assert mine["count"] == k6_values(summary, "http_reqs")["count"]


def test_command_writes_the_csv(tmp_path):
    runner = k6_mod.RemoteK6(LocalRemote(), "run-x", "http://127.0.0.1:9", k6_bin=K6)
    cmd = runner.command(step(index=4))
    raw, gz = runner.sample_paths(step(index=4))
    assert raw == f"{k6_mod.REMOTE_BASE}-user/run-x/04-async-50.raw.csv"
    assert gz == f"{k6_mod.REMOTE_BASE}-user/run-x/04-async-50.csv.gz"
    assert f"--out csv={raw}" in cmd
    assert "K6_CSV_TIME_FORMAT=unix_milli" in cmd
    assert "K6_CSV_SAVE_INTERVAL=25ms" in cmd  # no 1 s stall (docs/measurement.md)
    assert "K6_SYSTEM_TAGS=expected_response,status" in cmd  # half the bytes per row
    assert f"rm -f {k6_mod.REMOTE_BASE}-user/run-x/04-async-50.summary.json {raw} {gz}" in cmd
    assert k6_mod.k6_args("x.js") == ["run", "--quiet", "--no-color", "--no-usage-report", "x.js"]


def test_samples_agree_with_k6_summary(http_target, tmp_path):
    """The key promise: table percentiles from the raw samples equal k6's summary."""
    before = time.time()
    summary, out = run_k6(step("async", rate=50, duration_s=3), http_target.base_url, tmp_path)
    after = time.time()
    with gzip.open(out, "rt") as fh:
        lines = fh.read().splitlines()
    assert lines[0] == HEADER
    names = {line.split(",")[0] for line in lines[1:]}
    assert names <= {"http_req_duration", "dropped_iterations", "vus"} and "http_req_duration" in names
    assert all(len(line.split(",")) == 6 for line in lines)
    # every async request carries its own task id (the ledger's accepted ids), others none
    ids = [line.split(",")[5] for line in lines[1:] if line.startswith("http_req_duration,")]
    prefix = k6_mod.task_id_prefix("run", step("async", rate=50, duration_s=3))
    assert all(i.startswith(prefix + "-") for i in ids) and len(set(ids)) == len(ids)
    assert all(line.endswith(",") for line in lines[1:] if not line.startswith("http_req_duration,"))

    s = read_samples(out)
    assert s.bad_rows == 0
    assert 140 <= s.count <= 160  # 50/s for 3 s
    assert_same_latency(summary, s)
    assert s.req_ok.all() and set(s.req_status.tolist()) == {202}
    assert s.dropped_s.size == k6_values(summary, "dropped_iterations")["count"] == 0
    assert s.vus.size >= 2 and s.vus.max() <= 20  # k6's VU gauge, once a second
    assert before - 0.01 <= s.req_start_s.min() and s.req_end_s.max() <= after + 0.01


def test_failed_requests_are_marked(http_target, tmp_path):
    http_target.status["/sync"] = 503
    summary, out = run_k6(step("sync", rate=20, duration_s=1), http_target.base_url, tmp_path)
    s = read_samples(out)
    assert s.count == k6_values(summary, "http_reqs")["count"] >= 20
    assert s.failed == k6_values(summary, "http_req_failed")["passes"] == s.count
    assert set(s.req_status.tolist()) == {503}
    assert_same_latency(summary, s)


class _SlowHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802
        received = time.time()
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(0.05)
        self.server.received.append(received)
        self.send_response(202)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_target():
    """POST -> 202 after 50 ms; records when each request arrived."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    server.daemon_threads = True
    server.received = []
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


def test_timestamps_are_request_ends_and_drops_are_kept(slow_target, tmp_path):
    # one VU against a 50 ms server: ~20 requests/s served one after another, the rest dropped
    summary, out = run_k6(step("async", rate=50, duration_s=2, vus=1), slow_target.base_url, tmp_path)
    s = read_samples(out)
    assert s.count == k6_values(summary, "http_reqs")["count"] == len(slow_target.received)
    assert s.dropped_s.size == k6_values(summary, "dropped_iterations")["count"] >= 20
    assert_same_latency(summary, s)
    order = s.req_end_s.argsort()
    ends, starts = s.req_end_s[order], s.req_start_s[order]
    received = sorted(slow_target.received)
    for end, start, arrived in zip(ends, starts, received, strict=True):
        assert end - arrived >= 0.045  # the timestamp is after the server's 50 ms: the END
        assert abs(start - arrived) < 0.04  # and end - duration is when the request went out


class FileRemote(LocalRemote):
    """LocalRemote plus the download Remote.get_file does over SFTP."""

    def __init__(self):
        super().__init__()
        self.downloads: list[tuple[str, Path]] = []

    def get_file(self, remote_path, local_path):
        self.downloads.append((remote_path, Path(local_path)))
        shutil.copyfile(remote_path, local_path)

    def fresh(self):
        return FileRemote()


def test_remote_wrapper_pulls_samples(http_target, tmp_path, monkeypatch):
    monkeypatch.setattr(k6_mod, "REMOTE_BASE", str(tmp_path / "remote"))
    remote = FileRemote()
    runner = k6_mod.RemoteK6(remote, "run-s", http_target.base_url, k6_bin=K6)
    runner.prepare()
    st = step("async", rate=20, duration_s=2, index=2)
    summary = runner.run(st)
    raw, gz = runner.sample_paths(st)
    assert Path(raw).is_file() and not Path(gz).exists()  # filtered only when pulled, after the step
    local = tmp_path / "results" / "samples" / "02-async-20.csv.gz"
    rows = runner.pull_samples(st, local)
    assert remote.downloads == [(gz, local)]
    assert not Path(raw).exists() and Path(gz).is_file()
    assert local.read_bytes() == Path(gz).read_bytes()
    with gzip.open(local, "rt") as fh:
        assert rows == len(fh.read().splitlines()) - 1
    s = read_samples(local)
    assert s.count == summary["metrics"]["http_reqs"]["values"]["count"]
    assert rows == s.count + s.dropped_s.size + s.vus.size
    # a second pull filters nothing again and brings the same file
    assert runner.pull_samples(st, tmp_path / "again.csv.gz") == rows
    runner.cleanup()


def test_pull_samples_without_csv_is_none(tmp_path, monkeypatch):
    monkeypatch.setattr(k6_mod, "REMOTE_BASE", str(tmp_path / "remote"))
    remote = FileRemote()
    runner = k6_mod.RemoteK6(remote, "run-n", "http://127.0.0.1:9", k6_bin=K6)
    runner.prepare()
    assert runner.pull_samples(step(index=7), tmp_path / "x.csv.gz") is None
    assert not remote.downloads and not (tmp_path / "x.csv.gz").exists()


def test_pull_samples_filters_by_header_name_and_reports_bad_csv(tmp_path, monkeypatch):
    monkeypatch.setattr(k6_mod, "REMOTE_BASE", str(tmp_path / "remote"))
    runner = k6_mod.RemoteK6(FileRemote(), "run-f", "http://127.0.0.1:9", k6_bin=K6)
    runner.prepare()
    st = step(index=1)
    raw, gz = runner.sample_paths(st)
    # columns in another order than k6 v1.1 writes them, a quoted error with a comma and a
    # line break, and metrics that must be left out
    Path(raw).write_text(
        "status,metric_value,error,metric_name,expected_response,timestamp,metadata\n"
        "202,12.500000,,http_req_duration,true,1796290001234,task_id=ab-01-async-50-0\n"
        '0,2000.000000,"dial: a, b\nsecond line",http_req_duration,false,1796290002000,x=1&task_id=ab-1\n'
        "202,1.000000,,http_reqs,true,1796290001234,task_id=ab-01-async-50-0\n"
        ",1.000000,,dropped_iterations,,1796290001500,\n"
        ",7.000000,,vus,,1796290002000,\n"
        ",7.000000,,vus_max,,1796290002000,\n"
    )
    rows = runner.pull_samples(st, tmp_path / "s.csv.gz")
    with gzip.open(tmp_path / "s.csv.gz", "rt") as fh:
        assert fh.read().splitlines() == [
            HEADER,
            "http_req_duration,1796290001234,12.500000,true,202,ab-01-async-50-0",
            "http_req_duration,1796290002000,2000.000000,false,0,ab-1",
            "dropped_iterations,1796290001500,1,,,",
            "vus,1796290002000,7,,,",
        ]
    assert rows == 4

    st2 = step(index=2)
    raw2, _ = runner.sample_paths(st2)
    Path(raw2).write_text("metric_name,timestamp,metric_value,status\nvus,1,2.000000,\n")
    with pytest.raises(k6_mod.K6Error, match="lacks the column expected_response"):
        runner.pull_samples(st2, tmp_path / "s2.csv.gz")
    assert Path(raw2).is_file()  # kept for a look
