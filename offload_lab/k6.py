"""k6 on the loadgen host: upload the script once per run, run one step (constant-arrival-rate),
bring its summary JSON home, and stop it when the sweep is interrupted."""

from __future__ import annotations

import json
import shlex
import threading
from typing import Any

from .remote import Remote, RemoteError
from .spec import REPO_ROOT, Step

SCRIPT = REPO_ROOT / "k6" / "loadtest.js"
REMOTE_BASE = "/tmp/offload-k6"
MARKER = "==OFFLOAD-K6-SUMMARY=="


class K6Error(RuntimeError):
    pass


def graceful_stop_s(step: Step) -> int:
    """Long enough for a request that started just before the end to finish or time out."""
    return int(step.request_timeout_s) + 2


def k6_env(step: Step, base_url: str, summary_path: str) -> dict[str, str]:
    return {
        "MODE": step.mode,
        "RATE": str(step.rate),
        "DURATION": f"{step.duration_s}s",
        "PRE_VUS": str(step.pre_allocated_vus),
        "MAX_VUS": str(step.max_vus),
        "BASE_URL": base_url,
        "WORK_MS": str(step.work_ms),
        "SUMMARY_PATH": summary_path,
        "TIMEOUT": f"{step.request_timeout_s}s",
        "GRACEFUL_STOP": f"{graceful_stop_s(step)}s",
        "K6_NO_USAGE_REPORT": "true",
    }


def k6_args(script: str) -> list[str]:
    return ["run", "--quiet", "--no-color", "--no-usage-report", script]


def call_interruptibly(fn, *args, poll_s: float = 0.2):
    """Run fn in a worker thread and wait for it in a way Ctrl-C can break (KeyboardInterrupt is
    delivered to the main thread while it sleeps in join(timeout))."""
    box: dict[str, Any] = {}

    def target():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box["error"] = exc

    t = threading.Thread(target=target, name="k6-run", daemon=True)
    t.start()
    while t.is_alive():
        t.join(poll_s)
    if "error" in box:
        raise box["error"]
    return box.get("value")


class RemoteK6:
    def __init__(self, remote: Remote, run_id: str, base_url: str, k6_bin: str = "k6"):
        self.remote = remote
        self.run_id = run_id
        self.base_url = base_url
        self.k6_bin = k6_bin
        self.dir = f"{REMOTE_BASE}/{run_id}"

    def version(self) -> str | None:
        r = self.remote.run(f"{self.k6_bin} version", check=False, timeout=30)
        return r.stdout.strip().splitlines()[0] if r.ok and r.stdout.strip() else None

    def prepare(self) -> None:
        self.remote.run(f"mkdir -p {shlex.quote(self.dir)}")
        self.remote.put_text(SCRIPT.read_text(), f"{self.dir}/loadtest.js")

    def command(self, step: Step) -> str:
        stem = step.filename.removesuffix(".json")
        summary = f"{self.dir}/{stem}.summary.json"
        env = k6_env(step, self.base_url, summary)
        env_str = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        args = " ".join(shlex.quote(a) for a in k6_args("loadtest.js"))
        d = shlex.quote(self.dir)
        return (
            f"cd {d} && rm -f {shlex.quote(summary)} && "
            f"{{ env {env_str} {shlex.quote(self.k6_bin)} {args} > {shlex.quote(stem)}.log 2>&1 & "
            f"echo $! > k6.pid; wait $!; rc=$?; rm -f k6.pid; "
            f"echo {MARKER}; cat {shlex.quote(summary)} 2>/dev/null; "
            f"if [ $rc -ne 0 ]; then echo {MARKER}; tail -c 2000 {shlex.quote(stem)}.log; fi; exit $rc; }}"
        )

    def run(self, step: Step) -> dict[str, Any]:
        """Run one step to completion and return k6's summary (blocking; Ctrl-C-able)."""
        limit = step.duration_s + graceful_stop_s(step) + 120
        try:
            r = call_interruptibly(lambda: self.remote.run(self.command(step), check=False, timeout=limit))
        except RemoteError as exc:
            raise K6Error(str(exc)) from exc
        parts = r.stdout.split(MARKER)
        summary_text = parts[1].strip() if len(parts) > 1 else ""
        if not summary_text:
            tail = parts[2].strip() if len(parts) > 2 else r.stderr.strip()
            raise K6Error(f"k6 exited {r.exited} without a summary for step {step.filename}: {tail[-1000:]}")
        try:
            summary = json.loads(summary_text)
        except json.JSONDecodeError as exc:
            raise K6Error(f"k6 summary for {step.filename} is not JSON: {exc}") from exc
        if r.exited != 0:
            summary.setdefault("offload", {})["k6_exit_code"] = r.exited
        return summary

    def stop(self) -> None:
        """Stop a running k6 (SIGINT: k6 still writes its summary; then SIGKILL) over a new connection."""
        d = shlex.quote(self.dir)
        cmd = (
            f"p=$(cat {d}/k6.pid 2>/dev/null) || exit 0; kill -INT $p 2>/dev/null || exit 0; "
            f"for i in $(seq 50); do kill -0 $p 2>/dev/null || exit 0; sleep 0.1; done; kill -KILL $p"
        )
        remote = self.remote.fresh()
        try:
            remote.run(cmd, check=False, timeout=30)
        finally:
            remote.close()

    def cleanup(self) -> None:
        self.remote.run(f"rm -rf {shlex.quote(self.dir)}", check=False)
