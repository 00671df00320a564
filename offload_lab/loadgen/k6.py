"""k6 on a loadgen host: upload the script once per run, run one step (constant-arrival-rate),
bring its summary JSON home, and stop it on its host when the sweep is interrupted, or when k6
fails or times out (the partial summary k6 writes on SIGINT is handed back). With several
loadgens each runs its execution segment, paused until offload_lab.loadgen.k6_fleet resumes them all.

Per-request samples: offload_lab.loadgen.k6_samples.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..hosts.remote import Remote, RemoteError
from ..paths import K6_SCRIPT
from ..plan.spec_fields import K6_VARIABLES
from ..plan.steps import PlannedStep
from .k6_samples import SYSTEM_TAGS, count_rows, filter_command

CSV_SAVE_INTERVAL = "25ms"
REMOTE_BASE = "/tmp/offload-k6"  # + "-<login user>": another user's folder is not ours
MARKER = "==OFFLOAD-K6-SUMMARY=="
FILTER_TIMEOUT_S = 600
API_ADDRESS = "127.0.0.1:6565"  # k6's REST API on each loadgen (paused runs are resumed through it)
PAUSED_BEFORE_RUN = 4  # `k6 status`: VUs initialised, waiting for resume (k6's ExecutionStatus)
STOP_WAIT_S = 20  # after a stop: how long to wait for k6's partial summary
CONTROL_TIMEOUT_S = 15  # k6 status / resume / stop over SSH


class K6Error(RuntimeError):
    pass


def graceful_stop_s(step: PlannedStep) -> int:
    """Long enough for a request that started just before the end to finish or time out."""
    return int(step.request_timeout_s) + 2


def task_id_prefix(run_id: str, step: PlannedStep) -> str:
    """Ids k6 gives its async tasks: `<prefix>-<iteration>`, unique per run and step, in the
    gateway's id alphabet ([A-Za-z0-9_-], at most 64 characters)."""
    digest = hashlib.sha1(run_id.encode()).hexdigest()[:8]
    return f"{digest}-{step.stem}".replace(".", "_")[:48]


def k6_env(step: PlannedStep, base_url: str, summary_path: str, run_id: str = "run") -> dict[str, str]:
    """k6/loadtest.js's environment for a step: the spec keys' variables (spec_fields), what the
    run gives it, and k6's own options."""
    return {
        **{v.name: v.text(getattr(step, v.step_attribute)) for v in K6_VARIABLES},
        "BASE_URL": base_url,
        "SUMMARY_PATH": summary_path,
        "GRACEFUL_STOP": f"{graceful_stop_s(step)}s",
        "K6_NO_USAGE_REPORT": "true",
        "K6_CSV_TIME_FORMAT": "unix_milli",  # samples CSV: timestamp = unix ms
        # k6 writes its CSV every saveInterval (1 s by default): each write stalled k6 and added
        # a burst of slow requests once a second (docs/measurement.md, "Instruments and their cost")
        "K6_CSV_SAVE_INTERVAL": CSV_SAVE_INTERVAL,
        "K6_SYSTEM_TAGS": ",".join(SYSTEM_TAGS),
        "TASK_ID_PREFIX": task_id_prefix(run_id, step),
    }


@dataclass(frozen=True)
class Segment:
    """This loadgen's part of a test split over several (k6 execution segments)."""

    segment: str  # e.g. "1/2:1"
    sequence: str  # the one sequence all loadgens share, e.g. "0,1/2,1"
    api_address: str = API_ADDRESS


def k6_args(script: str, csv_path: str | None = None, segment: Segment | None = None) -> list[str]:
    """k6's command line; with csv_path k6 also writes every sample there (`--out csv=...`); with
    a segment k6 runs only that part of the test and starts paused (resume: `k6 resume`)."""
    out = ["--out", f"csv={csv_path}"] if csv_path else []
    split = []
    if segment is not None:
        split = [
            "--paused",
            "--address",
            segment.api_address,
            "--execution-segment",
            segment.segment,
            "--execution-segment-sequence",
            segment.sequence,
        ]
    return ["run", "--quiet", "--no-color", "--no-usage-report", *split, *out, script]


class Background:
    """fn running in a worker thread, waited for in a way Ctrl-C can break (KeyboardInterrupt is
    delivered to the main thread while it sleeps in join(timeout)); after an interruption the
    worker goes on, and its result can still be collected (`result(timeout)`)."""

    def __init__(self, fn, name: str = "k6-run"):
        self._box: dict[str, Any] = {}

        def target():
            try:
                self._box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                self._box["error"] = exc

        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, poll_s: float = 0.2):
        while self._thread.is_alive():
            self._thread.join(poll_s)
        if "error" in self._box:
            raise self._box["error"]
        return self._box.get("value")

    def result(self, timeout: float):
        """The value if fn returned within `timeout` seconds, else None (errors too)."""
        self._thread.join(timeout)
        return None if self._thread.is_alive() else self._box.get("value")


def call_interruptibly(fn, *args, poll_s: float = 0.2):
    """Run fn in a worker thread and wait for it, Ctrl-C-able (see Background)."""
    return Background(lambda: fn(*args)).wait(poll_s)


class RemoteK6:
    def __init__(
        self,
        remote: Remote,
        run_id: str,
        base_url: str,
        k6_bin: str = "k6",
        segment: Segment | None = None,
    ):
        """base_url: the gateway, or several separated by commas (k6/loadtest.js round-robins);
        segment: this loadgen's part of a test split over several (None: the whole test)."""
        self.remote = remote
        self.run_id = run_id
        self.base_url = base_url
        self.k6_bin = k6_bin
        self.segment = segment
        self.host = getattr(getattr(remote, "host", None), "name", None) or "loadgen"
        user = getattr(getattr(remote, "host", None), "user", None) or "user"
        self.dir = f"{REMOTE_BASE}-{user}/{run_id}"
        self._job: Background | None = None
        self._step: PlannedStep | None = None
        self._control_remote: Remote | None = None

    def version(self) -> str | None:
        r = self.remote.run(f"{self.k6_bin} version", check=False, timeout=30)
        return r.stdout.strip().splitlines()[0] if r.ok and r.stdout.strip() else None

    def prepare(self) -> None:
        self.remote.run(f"mkdir -p {shlex.quote(self.dir)}", timeout=CONTROL_TIMEOUT_S)
        self.remote.put_text(K6_SCRIPT.read_text(), f"{self.dir}/loadtest.js")

    def sample_paths(self, step: PlannedStep) -> tuple[str, str]:
        """(raw CSV k6 writes, filtered samples file) of a step on the loadgen."""
        stem = step.filename.removesuffix(".json")
        return f"{self.dir}/{stem}.raw.csv", f"{self.dir}/{stem}.csv.gz"

    def command(self, step: PlannedStep) -> str:
        stem = step.filename.removesuffix(".json")
        summary = f"{self.dir}/{stem}.summary.json"
        raw, gz = self.sample_paths(step)
        env = k6_env(step, self.base_url, summary, self.run_id)
        env_str = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        csv_path = raw if step.instruments.samples else None
        args = " ".join(
            shlex.quote(a) for a in k6_args("loadtest.js", csv_path=csv_path, segment=self.segment)
        )
        d = shlex.quote(self.dir)
        return (
            f"cd {d} && rm -f {shlex.quote(summary)} {shlex.quote(raw)} {shlex.quote(gz)} && "
            f"{{ env {env_str} {shlex.quote(self.k6_bin)} {args} > {shlex.quote(stem)}.log 2>&1 & "
            f"echo $! > k6.pid; wait $!; rc=$?; rm -f k6.pid; "
            f"echo {MARKER}; cat {shlex.quote(summary)} 2>/dev/null; "
            f"if [ $rc -ne 0 ]; then echo {MARKER}; tail -c 2000 {shlex.quote(stem)}.log; fi; exit $rc; }}"
        )

    def time_limit_s(self, step: PlannedStep) -> float:
        return step.duration_s + graceful_stop_s(step) + 120

    def start(self, step: PlannedStep) -> None:
        """Start the step's k6 on the host (returns at once; `wait` collects its summary)."""
        limit = self.time_limit_s(step)
        self._step = step
        self._job = Background(lambda: self.remote.run(self.command(step), check=False, timeout=limit))

    @property
    def finished(self) -> bool:
        return self._job is None or self._job.done

    def wait(self) -> dict[str, Any]:
        """k6's summary once it has exited (Ctrl-C-able). A failed or timed-out SSH call stops
        k6 on its host before K6Error is raised: it must not go on loading the gateway."""
        assert self._job is not None and self._step is not None, "start() first"
        try:
            r = self._job.wait()
        except RemoteError as exc:
            stopped = self._stop_on_host()
            raise K6Error(f"{exc} (k6 on {self.host}: {stopped})") from exc
        return self._summary(self._step, r)

    def run(self, step: PlannedStep) -> dict[str, Any]:
        """Run one step to completion and return k6's summary (blocking; Ctrl-C-able)."""
        self.start(step)
        return self.wait()

    def _summary(self, step: PlannedStep, r) -> dict[str, Any]:
        parts = r.stdout.split(MARKER)
        summary_text = parts[1].strip() if len(parts) > 1 else ""
        if not summary_text:
            tail = parts[2].strip() if len(parts) > 2 else r.stderr.strip()
            raise K6Error(
                f"k6 on {self.host} exited {r.exited} without a summary for step {step.filename}: "
                f"{tail[-1000:]}"
            )
        try:
            summary = json.loads(summary_text)
        except json.JSONDecodeError as exc:
            raise K6Error(f"k6 summary for {step.filename} is not JSON: {exc}") from exc
        if r.exited != 0:
            summary.setdefault("offload", {})["k6_exit_code"] = r.exited
        return summary

    def _control(self, command: str, fresh: bool = False):
        """A short command on the host over a second connection (the step's is busy), kept for
        the run so that the resumes of several loadgens go out without connection set-up;
        fresh: over a connection of its own (a stop may come while a control command runs)."""
        if fresh:
            remote = self.remote.fresh()
            try:
                return remote.run(command, check=False, timeout=CONTROL_TIMEOUT_S)
            finally:
                remote.close()
        if self._control_remote is None:
            self._control_remote = self.remote.fresh()
        return self._control_remote.run(command, check=False, timeout=CONTROL_TIMEOUT_S)

    def paused_and_ready(self) -> bool:
        """A paused k6 (segment) has initialised its VUs and waits to be resumed."""
        assert self.segment is not None
        addr = shlex.quote(self.segment.api_address)
        r = self._control(f"{shlex.quote(self.k6_bin)} status --address {addr} 2>/dev/null")
        status = None
        for line in r.stdout.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "status":
                status = value.strip().strip('"')
        return r.ok and status == str(PAUSED_BEFORE_RUN)

    def resume(self) -> float:
        """Resume a paused k6; returns when it was resumed (unix s, the host's clock)."""
        assert self.segment is not None
        addr = shlex.quote(self.segment.api_address)
        r = self._control(f"{shlex.quote(self.k6_bin)} resume --address {addr} >/dev/null && date +%s.%N")
        if not r.ok:
            raise K6Error(f"k6 on {self.host}: resume failed ({r.exited}): {(r.stderr or r.stdout)[-300:]}")
        try:
            return float(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return time.time()

    def _stop_on_host(self) -> str:
        """SIGINT (k6 still writes its summary), then SIGKILL after 5 s; says what it did."""
        d = shlex.quote(self.dir)
        cmd = (
            f"p=$(cat {d}/k6.pid 2>/dev/null) || {{ echo not running; exit 0; }}; "
            f"kill -INT $p 2>/dev/null || {{ echo not running; exit 0; }}; "
            f"for i in $(seq 50); do kill -0 $p 2>/dev/null || {{ echo stopped; exit 0; }}; sleep 0.1; done; "
            f"kill -KILL $p; echo killed"
        )
        try:
            return self._control(cmd, fresh=True).stdout.strip() or "stop: no answer"
        except RemoteError as exc:
            return f"could not stop it: {exc}"

    def stop(self) -> dict[str, Any] | None:
        """Stop a running k6 on its host, over a new connection; returns the partial summary k6
        wrote on SIGINT (None if there is none), marked `offload.interrupted`."""
        self._stop_on_host()
        if self._job is None or self._step is None:
            return None
        r = self._job.result(STOP_WAIT_S)
        if r is None:
            return None
        try:
            summary = self._summary(self._step, r)
        except K6Error:
            return None
        summary.setdefault("offload", {})["interrupted"] = True
        return summary

    def filter_samples(self, step: PlannedStep) -> bool:
        """Filter the step's raw CSV on the loadgen (if not done yet). True if the samples file
        is there afterwards, False if k6 left no CSV. Costs loadgen CPU (awk + gzip, about a
        second per 100k requests): call it after the step's measurements, not during them."""
        raw, gz = self.sample_paths(step)
        r_, g_ = shlex.quote(raw), shlex.quote(gz)
        cmd = (
            f"if [ -f {r_} ]; then {{ {filter_command(raw, gz)}; }} || exit 4; fi; "
            f"if [ -f {g_} ]; then echo present; else echo missing; fi"
        )
        try:
            r = self.remote.run(cmd, check=False, timeout=FILTER_TIMEOUT_S)
        except RemoteError as exc:
            raise K6Error(f"samples of {step.filename}: {exc}") from exc
        if not r.ok:
            raise K6Error(
                f"samples of {step.filename}: filtering {raw} failed ({r.exited}): {r.stderr.strip()[-500:]}"
            )
        return r.stdout.strip().endswith("present")

    def pull_samples(self, step: PlannedStep, local_path: Path) -> int | None:
        """Filter the step's samples on the loadgen (see filter_samples), download the .csv.gz to
        local_path and return its number of data rows; None if k6 left no samples for the step."""
        if not self.filter_samples(step):
            return None
        _, gz = self.sample_paths(step)
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.remote.get_file(gz, local_path)
        except RemoteError as exc:
            raise K6Error(f"samples of {step.filename}: {exc}") from exc
        return count_rows(local_path)

    def cleanup(self) -> None:
        self.remote.run(f"rm -rf {shlex.quote(self.dir)}", check=False, timeout=CONTROL_TIMEOUT_S)
        if self._control_remote is not None:
            self._control_remote.close()
            self._control_remote = None
