"""Benchmark: the gateway's publishers (/async) and /sync under real gunicorn and k6, on loopback.

Run through bench/publishers.sh, which provides a throwaway broker (AMQP_URL). Each scenario
starts gunicorn with its settings, runs one k6 constant-arrival-rate step per --rate (400/s,
100 VUs, 15 s by default), and the script prints one table row per scenario and rate (with
several rates, also the highest that held --p95-ms with nothing failed or dropped). Not a test:
the figures depend on the machine; compare them with docs/measurement.md.

`publishers.py stub-core PORT` runs the stand-in core used when build/offload-core is absent:
POST /work sleeps work_ms (default 1000) per request, with unbounded concurrency (gevent).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import kombu
import requests
from offload_gateway.topology import task_exchange

from analysis.load import step_from_dict
from analysis.metrics import compute_metrics

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
GO_CORE = REPO / "build" / "offload-core"
RESULTS = REPO / "build" / "bench" / "publishers.json"


@dataclass(frozen=True)
class Scenario:
    name: str
    endpoint: str
    gateway_env: dict[str, str] = field(default_factory=dict)


GEVENT = {"GUNICORN_WORKER_CLASS": "gevent", "GUNICORN_WORKERS": "2"}
GTHREAD_2X8 = {"GUNICORN_WORKER_CLASS": "gthread", "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "8"}

SCENARIOS = [
    Scenario("kombu_pool confirms, gevent x2", "/async", {**GEVENT, "PUBLISHER": "kombu_pool"}),
    Scenario(
        "kombu_pool no confirms, gevent x2",
        "/async",
        {**GEVENT, "PUBLISHER": "kombu_pool", "PUBLISH_CONFIRM": "0"},
    ),
    Scenario("kombu_pool confirms, gthread 2x8", "/async", {**GTHREAD_2X8, "PUBLISHER": "kombu_pool"}),
    Scenario("pika_per_request, gevent x2", "/async", {**GEVENT, "PUBLISHER": "pika_per_request"}),
    Scenario("pika_shared, gthread 2x8", "/async", {**GTHREAD_2X8, "PUBLISHER": "pika_shared"}),
    Scenario("celery confirms, gevent x2", "/async", {**GEVENT, "PUBLISHER": "celery"}),
    Scenario(
        "celery_default_pool confirms, gevent x2", "/async", {**GEVENT, "PUBLISHER": "celery_default_pool"}
    ),
    Scenario("dramatiq confirms, gevent x2", "/async", {**GEVENT, "PUBLISHER": "dramatiq"}),
    Scenario("pipelined confirms, gevent x2", "/async", {**GEVENT, "PUBLISHER": "pipelined"}),
    Scenario("pipelined confirms, gthread 2x8", "/async", {**GTHREAD_2X8, "PUBLISHER": "pipelined"}),
    # /async's parsing and answer without the publish: the framework's ceiling
    Scenario("noop, gevent x2", "/noop", {**GEVENT}),
    Scenario("sync, gevent x2", "/sync", {**GEVENT}),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = 20) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return False


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_core(amqp_url: str, log_dir: Path) -> tuple[subprocess.Popen, str, str]:
    """The real core if it was built, else the stub; returns (process, base URL, kind)."""
    port = free_port()
    log = open(log_dir / "core.log", "w")  # noqa: SIM115 - lives as long as the process
    if GO_CORE.exists():
        env = dict(os.environ, AMQP_URL=amqp_url, HTTP_ADDR=f"127.0.0.1:{port}", WORK_MS="1000")
        process = subprocess.Popen([str(GO_CORE)], env=env, stdout=log, stderr=subprocess.STDOUT)
        if wait_healthy(f"http://127.0.0.1:{port}/healthz", process):
            return process, f"http://127.0.0.1:{port}", "offload-core"
        stop(process)
        print("build/offload-core did not become healthy; using the stub core", file=sys.stderr)
        port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "stub-core", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    if not wait_healthy(f"http://127.0.0.1:{port}/healthz", process):
        raise SystemExit("the stub core did not start; see " + str(log_dir / "core.log"))
    return process, f"http://127.0.0.1:{port}", "stub"


def start_gateway(scenario: Scenario, amqp_url: str, core_url: str, log_path: Path):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GUNICORN_", "PUBLISH"))}
    env.update(
        AMQP_URL=amqp_url,
        CORE_URL=core_url,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_LOGLEVEL="warning",
        **scenario.gateway_env,
    )
    command = [str(VENV_BIN / "gunicorn"), "-c", "gateway/gunicorn.conf.py", "offload_gateway.wsgi:app"]
    log = open(log_path, "w")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    if not wait_healthy(f"{base_url}/healthz", process):
        stop(process)
        raise SystemExit(f"gunicorn did not start for {scenario.name}; see {log_path}")
    return process, base_url


def run_k6(base_url: str, endpoint: str, rate: int, args, summary_path: Path) -> dict:
    env = dict(
        os.environ,
        BASE_URL=base_url,
        ENDPOINT=endpoint,
        RATE=str(rate),
        DURATION=args.duration,
        VUS=str(args.vus),
        WORK_MS="1000",
        SUMMARY_PATH=str(summary_path),
        K6_NO_USAGE_REPORT="true",
    )
    script = REPO / "bench" / "publishers.k6.js"
    subprocess.run(
        [str(VENV_BIN / "k6"), "run", "--quiet", "--no-color", str(script)],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    return json.loads(summary_path.read_text())


def duration_seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60}
    for unit in sorted(units, key=len, reverse=True):
        if duration.endswith(unit):
            return float(duration[: -len(unit)]) * units[unit]
    return float(duration)


def summarize(summary: dict, endpoint: str, rate: int, duration_s: float) -> dict:
    """The report's own figures (analysis.metrics) for one k6 summary."""
    warnings: list[str] = []
    mode = "sync" if endpoint == "/sync" else "async"  # /noop answers like /async
    step = {"step": {"mode": mode, "rate": rate, "duration_s": duration_s}, "k6": summary}
    m = compute_metrics(step_from_dict(step, "bench", warnings))
    return {
        "avg_ms": m.lat_avg,
        "p95_ms": m.lat_p95,
        "p99_ms": m.lat_p99,
        "requests": m.requests,
        "failed_pct": 100 * (m.error_rate or 0.0),
        "dropped": m.dropped,
        "throughput": m.throughput,
    }


def declare_queue_for_the_stub(amqp_url: str, queue: str = "tasks") -> None:
    """The gateway declares nothing and the stub core consumes nothing: a plain durable queue,
    bound to its task exchange as the core binds it, takes the tasks (the real core declares the
    real topology when it connects)."""
    exchange = task_exchange(queue)
    with kombu.Connection(amqp_url) as connection:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True, auto_delete=False)
        channel.exchange_declare(exchange, "direct", durable=True, auto_delete=False)
        channel.queue_bind(queue, exchange, queue)


def purge_queue(amqp_url: str, queue: str = "tasks") -> int:
    with kombu.Connection(amqp_url) as connection:
        try:
            return connection.channel().queue_purge(queue) or 0
        except Exception:  # noqa: BLE001 - the queue may not exist yet
            return 0


def print_table(rows: list[dict], header: str) -> None:
    print(f"\n{header}\n")
    print("| scenario | rate /s | avg ms | p95 ms | p99 ms | failed % | dropped | throughput /s |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['scenario']} | {row['rate']} | {row['avg_ms']:.2f} | {row['p95_ms']:.2f} "
            f"| {row['p99_ms']:.2f} | {row['failed_pct']:.2f} | {row['dropped']} | {row['throughput']:.1f} |"
        )


def print_highest_rates(rows: list[dict], p95_ms: float) -> None:
    """Per scenario, the highest rate tried that held p95 <= p95_ms with nothing failed or dropped."""
    print(f"\nhighest rate tried with p95 <= {p95_ms:g} ms, 0 failed, 0 dropped:\n")
    for scenario in dict.fromkeys(row["scenario"] for row in rows):
        held = [
            row["rate"]
            for row in rows
            if row["scenario"] == scenario
            and row["p95_ms"] <= p95_ms
            and row["failed_pct"] == 0
            and row["dropped"] == 0
        ]
        print(f"- {scenario}: {max(held) if held else 'none'}")


def bench(args) -> None:
    amqp_url = os.environ.get("AMQP_URL")
    if not amqp_url:
        raise SystemExit("AMQP_URL is not set: run bench/publishers.sh (it starts a broker)")
    if not (VENV_BIN / "k6").exists():
        raise SystemExit(f"k6 not found in {VENV_BIN}: run scripts/install-deps.sh")
    scenarios = [s for s in SCENARIOS if not args.only or any(word in s.name for word in args.only)]
    load_before = os.getloadavg()[0]
    work_dir = Path(tempfile.mkdtemp(prefix="offload-bench-"))
    core, core_url, core_kind = start_core(amqp_url, work_dir)
    if core_kind == "stub":
        declare_queue_for_the_stub(amqp_url)
    rows = []
    try:
        # rate by rate, every scenario at each: a busy spell on the machine hits one rate, not
        # one scenario; one gunicorn per step, so each starts from the same state
        for rate in args.rate:
            for scenario in scenarios:
                print(f"-- {scenario.name} ({scenario.endpoint}) at {rate}/s", flush=True)
                log_path = work_dir / f"gunicorn-{len(rows)}.log"
                gateway, base_url = start_gateway(scenario, amqp_url, core_url, log_path)
                try:
                    summary = run_k6(
                        base_url, scenario.endpoint, rate, args, work_dir / f"k6-{len(rows)}.json"
                    )
                finally:
                    stop(gateway)
                row = {"scenario": scenario.name, "endpoint": scenario.endpoint, "rate": rate}
                row.update(scenario.gateway_env)
                row.update(summarize(summary, scenario.endpoint, rate, duration_seconds(args.duration)))
                row["publish_failures_logged"] = log_path.read_text().count("publish failed")
                rows.append(row)
                purge_queue(amqp_url)
                time.sleep(args.cooldown)
    finally:
        stop(core)
    header = (
        f"{'/'.join(map(str, args.rate))} RPS, {args.vus} VUs (pre-allocated = max), {args.duration}, "
        f"constant-arrival-rate; core: {core_kind}; {os.cpu_count()} CPUs; "
        f"load average before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f}"
    )
    rows.sort(key=lambda row: [s.name for s in scenarios].index(row["scenario"]))
    print_table(rows, header)
    if len(args.rate) > 1:
        print_highest_rates(rows, args.p95_ms)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"header": header, "rows": rows}, indent=2))
    print(f"\nrows as JSON: {RESULTS.relative_to(REPO)}; logs: {work_dir}")
    if not args.keep_logs:
        shutil.rmtree(work_dir, ignore_errors=True)


def stub_core(port: int) -> None:
    # gevent's own sleep and server: nothing to monkey-patch
    import gevent
    from gevent.pywsgi import WSGIServer

    def app(environ, start_response):
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"status":"ok"}']
        if path != "/work" or method != "POST":
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error":"not found"}']
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        work_ms = body.get("work_ms", 1000)
        gevent.sleep(work_ms / 1000)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"worked_ms": work_ms}).encode()]

    WSGIServer(("127.0.0.1", port), app, log=None, spawn=10000).serve_forever()


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "stub-core":
        stub_core(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, nargs="+", default=[400], help="one step per rate")
    parser.add_argument("--p95-ms", type=float, default=20, help="the p95 a rate must hold (rate sweep)")
    parser.add_argument("--vus", type=int, default=100)
    parser.add_argument("--duration", default="15s")
    parser.add_argument("--cooldown", type=float, default=3)
    parser.add_argument("--only", nargs="*", help="run scenarios whose name contains any of these")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    # keep every load bounded: loopback benchmarks, not soak tests
    rates_ok = all(1 <= rate <= 2000 for rate in args.rate)
    if not rates_ok or not 1 <= args.vus <= 1000 or duration_seconds(args.duration) > 300:
        parser.error("keep --rate within 1..2000, --vus within 1..1000 and --duration within 5m")
    bench(args)


if __name__ == "__main__":
    main()
