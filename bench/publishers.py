"""Benchmark: the gateway's publishers under real gunicorn and k6, on loopback, in two modes.

- publish: the publish path alone. No consumer competes for the CPU; the task queue (declared
  with the task exchange, as the core declares them) is purged after every step.
- system: the whole system on one box. The real core (build/bench/offload-core) consumes, does
  its 1 s of work per task and writes its ledger; the next step starts once it has drained.

Run through bench/publishers.sh, which provides a throwaway broker (AMQP_URL) and builds the
core. Each mode runs every subject rate by rate (the subjects interleaved, their order rotated
every repeat and every rate), --repeats times; each step starts its own gunicorn, so each subject
starts from the same state. A subject that failed a step (p95 over --p95-ms, or anything failed
or dropped) is not run at the higher rates of that repeat. The folder of each mode (--out/MODE)
gets bench.json, the raw k6 summary of every step (k6/) and bench.md, the table
offload_lab/analysis/publisher_bench.py makes from them: each subject's capacity and its ratios to kombu_pool
without confirms and to the no-op, with their spread over the repeats.

The README quotes the published folders through offload_lab.analysis.generated_blocks.
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
from datetime import UTC, datetime
from pathlib import Path

import kombu
import requests
from offload_gateway.topology import task_exchange

from offload_lab.analysis import publisher_bench as pb
from offload_lab.cli.run_start import git_info
from offload_lab.run.results import GIT_DIFF_FILE

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
GO_CORE = REPO / "build" / "bench" / "offload-core"
TASK_QUEUE = "tasks"
LEDGER_QUEUE = "tasks.done"  # the core's default
DRAIN_TIMEOUT_S = 120


@dataclass(frozen=True)
class Subject:
    name: str
    endpoint: str
    gateway_env: dict[str, str] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.name).strip("-").replace("--", "-")


GEVENT = {"GUNICORN_WORKER_CLASS": "gevent", "GUNICORN_WORKERS": "2", "GUNICORN_WORKER_CONNECTIONS": "1000"}
GATEWAY_TEXT = "gevent, 2 workers x 1000 connections"

SUBJECTS = [
    # /async's parsing and answer without the publish: the framework's ceiling
    Subject(pb.NO_OP, "/noop", GEVENT),
    Subject(pb.NO_CONFIRM, "/async", {**GEVENT, "PUBLISHER": "kombu_pool", "PUBLISH_CONFIRM": "0"}),
    Subject("pipelined", "/async", {**GEVENT, "PUBLISHER": "pipelined"}),
    Subject("kombu_pool", "/async", {**GEVENT, "PUBLISHER": "kombu_pool"}),
    Subject("celery", "/async", {**GEVENT, "PUBLISHER": "celery"}),
    Subject("dramatiq", "/async", {**GEVENT, "PUBLISHER": "dramatiq"}),
]
DEFAULT_RATES = {
    "publish": [400, 600, 800, 1000, 1200, 1400, 1600, 2000, 2400, 2800],
    "system": [200, 400, 600, 800, 1000, 1200, 1600, 2000],
}
MAX_RATE, MAX_VUS, MAX_DURATION_S, MAX_REPEATS = 3000, 1000, 300, 10


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


def start_core(amqp_url: str, log_path: Path) -> subprocess.Popen:
    if not GO_CORE.exists():
        raise SystemExit(f"{GO_CORE} is missing: run bench/publishers.sh, which builds it")
    port = free_port()
    # PREFETCH 2000: 1 s of work at the highest rate tried is the tasks in flight; the core's
    # prefetch must not be what fails first
    env = dict(os.environ, AMQP_URL=amqp_url, HTTP_ADDR=f"127.0.0.1:{port}", WORK_MS="1000", PREFETCH="2000")
    log = open(log_path, "w")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen([str(GO_CORE)], env=env, stdout=log, stderr=subprocess.STDOUT)
    if not wait_healthy(f"http://127.0.0.1:{port}/healthz", process):
        stop(process)
        raise SystemExit(f"the core did not become healthy; see {log_path}")
    return process


def start_gateway(subject: Subject, amqp_url: str, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GUNICORN_", "PUBLISH"))}
    env.update(
        AMQP_URL=amqp_url,
        CORE_URL="http://127.0.0.1:9",  # /sync is not benchmarked here
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_LOGLEVEL="warning",
        **subject.gateway_env,
    )
    command = [str(VENV_BIN / "gunicorn"), "-c", "gateway/gunicorn.conf.py", "offload_gateway.wsgi:app"]
    log = open(log_path, "w")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    if not wait_healthy(f"{base_url}/healthz", process):
        stop(process)
        raise SystemExit(f"gunicorn did not start for {subject.name}; see {log_path}")
    return process, base_url


def run_k6(base_url: str, subject: Subject, rate: int, args, summary_path: Path) -> dict:
    env = dict(
        os.environ,
        BASE_URL=base_url,
        ENDPOINT=subject.endpoint,
        RATE=str(rate),
        DURATION=f"{args.duration_s:g}s",
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


def delete_task_queue(amqp_url: str) -> None:
    """Each mode declares its own: a plain queue in publish mode, the core's (with its
    arguments, which a queue of the same name without them would refuse) in system mode."""
    with kombu.Connection(amqp_url) as connection:
        channel = connection.channel()
        channel.queue_delete(TASK_QUEUE)
        channel.exchange_delete(task_exchange(TASK_QUEUE))


def declare_task_queue(amqp_url: str) -> None:
    """The task queue bound to its task exchange, as the core binds them (publish mode has no
    core)."""
    with kombu.Connection(amqp_url) as connection:
        channel = connection.channel()
        channel.queue_declare(TASK_QUEUE, durable=True, auto_delete=False)
        channel.exchange_declare(task_exchange(TASK_QUEUE), "direct", durable=True, auto_delete=False)
        channel.queue_bind(TASK_QUEUE, task_exchange(TASK_QUEUE), TASK_QUEUE)


def ready_messages(amqp_url: str, queue: str) -> int:
    with kombu.Connection(amqp_url) as connection:
        return connection.channel().queue_declare(queue, passive=True).message_count


def purge(amqp_url: str, queue: str) -> None:
    with kombu.Connection(amqp_url) as connection:
        connection.channel().queue_purge(queue)


def settle(mode: str, amqp_url: str, cooldown_s: float) -> None:
    """Bring the broker back to an empty task queue before the next step."""
    if mode == "publish":
        purge(amqp_url, TASK_QUEUE)
    else:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while ready_messages(amqp_url, TASK_QUEUE) > 0:
            if time.monotonic() > deadline:
                raise SystemExit(f"the core did not drain {TASK_QUEUE} within {DRAIN_TIMEOUT_S} s")
            time.sleep(0.5)
        time.sleep(1.5)  # the last deliveries' 1 s of work, and their ledger records
        purge(amqp_url, LEDGER_QUEUE)  # nobody reads the ledger here: it would only grow
    time.sleep(cooldown_s)


def run_order(subjects: list[Subject], repeat: int, rate_index: int) -> list[Subject]:
    """The subjects rotated by repeat and rate, so no subject always runs first (right after a
    purge or a higher-rate step) or last."""
    if not subjects:
        return []
    shift = (repeat - 1 + rate_index) % len(subjects)
    return subjects[shift:] + subjects[:shift]


def run_mode(
    mode: str,
    subjects: list[Subject],
    rates: list[int],
    args,
    amqp_url: str,
    folder: Path,
    git: tuple[dict, str],
) -> None:
    logs = Path(tempfile.mkdtemp(prefix=f"offload-bench-{mode}-"))
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "k6").mkdir(parents=True)
    if git.get("git_diff"):
        (folder / GIT_DIFF_FILE).write_text(git["git_diff"])
    settings = {
        "duration_s": args.duration_s,
        "vus": args.vus,
        "p95_ms": args.p95_ms,
        "rates": rates,
        "repeats": args.repeats,
        "gateway": GATEWAY_TEXT,
        "cpus": os.cpu_count(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_before": round(os.getloadavg()[0], 2),
        "git_commit": git["git_commit"],
        "git_dirty": git["git_dirty"],
    }
    core = None
    delete_task_queue(amqp_url)
    if mode == "publish":
        declare_task_queue(amqp_url)
    else:
        core = start_core(amqp_url, logs / "core.log")
    purge(amqp_url, TASK_QUEUE)
    entries = []
    try:
        for repeat in range(1, args.repeats + 1):
            failed: set[str] = set()
            for rate_index, rate in enumerate(rates):
                live = [s for s in subjects if s.name not in failed]
                for position, subject in enumerate(run_order(live, repeat, rate_index)):
                    print(f"-- {mode} repeat {repeat}: {subject.name} at {rate}/s", flush=True)
                    summary_name = f"k6/r{repeat}-{rate:04d}-{subject.slug}.json"
                    log = logs / f"{Path(summary_name).stem}.log"
                    gateway, base_url = start_gateway(subject, amqp_url, log)
                    try:
                        summary = run_k6(base_url, subject, rate, args, folder / summary_name)
                    finally:
                        stop(gateway)
                    entry = {"repeat": repeat, "rate": rate, "subject": subject.name, "position": position}
                    entries.append({**entry, "summary": summary_name})
                    figures = pb.step_figures(summary, subject.endpoint, rate, args.duration_s)
                    step = pb.BenchStep(repeat, rate, subject.name, position, figures)
                    if not step.held(args.p95_ms):
                        failed.add(subject.name)
                    print(
                        f"   p95 {figures.p95_ms or float('nan'):.2f} ms, failed {figures.failed_pct:.2f} %, "
                        f"dropped {figures.dropped}",
                        flush=True,
                    )
                    settle(mode, amqp_url, args.cooldown)
    finally:
        if core is not None:
            stop(core)
    settings["load_average_after"] = round(os.getloadavg()[0], 2)
    data = {
        "schema_version": pb.SCHEMA_VERSION,
        "mode": mode,
        "settings": settings,
        "subjects": [{"name": s.name, "endpoint": s.endpoint, "gateway": s.gateway_env} for s in subjects],
        "steps": entries,
    }
    (folder / pb.BENCH_FILE).write_text(json.dumps(data, indent=1) + "\n")
    table = pb.table_markdown(pb.load_bench(folder))
    (folder / pb.TABLE_FILE).write_text(table)
    print(f"\n{table}\n{folder / pb.TABLE_FILE}; gateway and core logs: {logs}")
    if not args.keep_logs:
        shutil.rmtree(logs, ignore_errors=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", nargs="+", choices=list(pb.MODES), default=list(pb.MODES))
    parser.add_argument(
        "--rate", type=int, nargs="+", help="the rates, ascending [per mode: see DEFAULT_RATES]"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--p95-ms", type=float, default=20, help="the p95 a step must hold")
    parser.add_argument("--vus", type=int, default=100)
    parser.add_argument("--duration-s", type=float, default=10)
    parser.add_argument("--cooldown", type=float, default=2, help="seconds between steps")
    parser.add_argument("--only", nargs="+", help="these subjects only (names as in bench.md)")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "bench", help="a folder per mode in it")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    # every load bounded: loopback benchmarks, not soak tests; checked before anything starts
    rates = args.rate or []
    problems = []
    if any(not 1 <= r <= MAX_RATE for r in rates) or rates != sorted(set(rates)):
        problems.append(f"--rate: distinct rates in increasing order within 1..{MAX_RATE}")
    if not 1 <= args.vus <= MAX_VUS:
        problems.append(f"--vus: within 1..{MAX_VUS}")
    if not 1 <= args.duration_s <= MAX_DURATION_S:
        problems.append(f"--duration-s: within 1..{MAX_DURATION_S}")
    if not 1 <= args.repeats <= MAX_REPEATS:
        problems.append(f"--repeats: within 1..{MAX_REPEATS}")
    if not args.p95_ms > 0:
        problems.append("--p95-ms: above 0")
    known = [s.name for s in SUBJECTS]
    unknown = sorted(set(args.only or []) - set(known))
    if unknown:
        problems.append(f"--only: unknown subject(s) {', '.join(unknown)} (known: {', '.join(known)})")
    if problems:
        parser.error("; ".join(problems))
    return args


def bench(args: argparse.Namespace) -> None:
    amqp_url = os.environ.get("AMQP_URL")
    if not amqp_url:
        raise SystemExit("AMQP_URL is not set: run bench/publishers.sh (it starts a broker)")
    if not (VENV_BIN / "k6").exists():
        raise SystemExit(f"k6 not found in {VENV_BIN}: run scripts/install-deps.sh")
    subjects = [s for s in SUBJECTS if not args.only or s.name in args.only]
    git = git_info()  # read once, before any output is written: republishing replaces tracked files
    for mode in args.mode:
        run_mode(mode, subjects, args.rate or DEFAULT_RATES[mode], args, amqp_url, args.out / mode, git)


def main(argv: list[str]) -> None:
    bench(parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
