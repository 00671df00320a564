"""k6 on the loadgen host: upload the script once per run, run one step (constant-arrival-rate),
bring its summary JSON home, and stop it when the sweep is interrupted.

Every step also writes k6's per-request CSV (`--out csv`, unix-ms timestamps) on the loadgen.
`RemoteK6.pull_samples` filters it there to the rows and columns of docs/result-format.md
("Per-second evidence"), gzips it and brings it home; the raw CSV is deleted on the loadgen.
Measured with k6 v1.1.0: an http_req_duration row's timestamp is the request's END (response
received, truncated to the ms); k6 flushes the CSV every second and once more on exit (also on
SIGINT), so the file is complete when k6 has returned.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shlex
import threading
from pathlib import Path
from typing import Any

from .paths import K6_SCRIPT
from .remote import Remote, RemoteError
from .steps import PlannedStep

REMOTE_BASE = "/tmp/offload-k6"  # + "-<login user>": another user's folder is not ours
MARKER = "==OFFLOAD-K6-SUMMARY=="
SAMPLE_COLUMNS = ("metric_name", "timestamp", "metric_value", "expected_response", "status")
# written after SAMPLE_COLUMNS: the request's task id (async), from k6's `metadata` column
TASK_ID_COLUMN = "task_id"
# the first: one row per request (value ms, as k6 wrote it); the others: counts, value as a number
SAMPLE_METRICS = ("http_req_duration", "dropped_iterations", "vus")
FILTER_TIMEOUT_S = 600

# Filters k6's CSV (columns located by header name) to SAMPLE_COLUMNS for SAMPLE_METRICS. Plain
# POSIX awk (mawk on Debian). A line with a double quote holds a quoted field (an error message
# with a comma, say) and is split as CSV, joining the next lines while a quote is open.
_FILTER_AWK = r"""
function csvsplit(line,   n, i, c, q, cur, len) {
  n = 0; cur = ""; q = 0; len = length(line)
  for (i = 1; i <= len; i++) {
    c = substr(line, i, 1)
    if (q) {
      if (c == "\"") { if (substr(line, i + 1, 1) == "\"") { cur = cur c; i++ } else q = 0 }
      else cur = cur c
    } else if (c == "\"") q = 1
    else if (c == ",") { f[++n] = cur; cur = "" }
    else cur = cur c
  }
  f[++n] = cur
  return q
}
NR == 1 {
  sub(/\r$/, "")
  for (i = 1; i <= NF; i++) col[$i] = i
  n = split("COLUMNS", want, ",")
  for (i = 1; i <= n; i++) if (!(want[i] in col)) {
    print "k6 CSV header lacks the column " want[i] ": " $0 > "/dev/stderr"; exit 2
  }
  m = col["metric_name"]; t = col["timestamp"]; v = col["metric_value"]
  e = col["expected_response"]; s = col["status"]; md = ("metadata" in col) ? col["metadata"] : 0
  n = split("COUNT_METRICS", names, ",")
  for (i = 1; i <= n; i++) counted[names[i]] = 1
  print "COLUMNS,TASK_ID"
  next
}
function task_id(meta,   k, parts, i) {
  k = split(meta, parts, "&")
  for (i = 1; i <= k; i++) if (substr(parts[i], 1, 8) == "task_id=") return substr(parts[i], 9)
  return ""
}
{
  if (index($0, "\"")) {
    line = $0
    while (csvsplit(line) && (getline nxt) > 0) line = line "\n" nxt
    name = f[m]; ts = f[t]; val = f[v]; er = f[e]; st = f[s]; meta = md ? f[md] : ""
  } else {
    name = $m; ts = $t; val = $v; er = $e; st = $s; meta = md ? $md : ""
  }
  if (name == "REQUEST_METRIC") print name, ts, val, er, st, task_id(meta)
  else if (name in counted) print name, ts, val + 0, "", "", ""
}
"""


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
        "K6_CSV_TIME_FORMAT": "unix_milli",  # samples CSV: timestamp = unix ms
        "TASK_ID_PREFIX": task_id_prefix(run_id, step),
    }


def k6_args(script: str, csv_path: str | None = None) -> list[str]:
    """k6's command line; with csv_path k6 also writes every sample there (`--out csv=...`)."""
    out = ["--out", f"csv={csv_path}"] if csv_path else []
    return ["run", "--quiet", "--no-color", "--no-usage-report", *out, script]


def filter_command(raw_csv: str, out_gz: str) -> str:
    """Shell text (POSIX sh, awk, gzip) that filters k6's raw CSV to the samples file of
    docs/result-format.md: SAMPLE_COLUMNS, rows of SAMPLE_METRICS only, gzip -6 to `out_gz`
    (which must end in .gz); the raw CSV is deleted once the samples file is complete. Exits
    non-zero (raw CSV kept) if the header lacks a column or a tool fails."""
    if not out_gz.endswith(".gz"):
        raise ValueError(f"samples file must end in .gz: {out_gz}")
    plain = out_gz.removesuffix(".gz")
    program = _FILTER_AWK.replace("COLUMNS,TASK_ID", ",".join((*SAMPLE_COLUMNS, TASK_ID_COLUMN)))
    program = program.replace("COLUMNS", ",".join(SAMPLE_COLUMNS))
    program = program.replace("REQUEST_METRIC", SAMPLE_METRICS[0])
    program = program.replace("COUNT_METRICS", ",".join(SAMPLE_METRICS[1:]))
    r, p, g = shlex.quote(raw_csv), shlex.quote(plain), shlex.quote(out_gz)
    return (
        f"rm -f {p} {g} && awk -F, -v OFS=, {shlex.quote(program)} {r} > {p} && gzip -6 -f {p} && rm -f {r}"
    )


def count_rows(path: Path) -> int:
    """Data rows (without the header) of a .csv.gz samples file."""
    with gzip.open(path, "rb") as fh:
        lines = sum(1 for _ in fh)
    return max(0, lines - 1)


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
        user = getattr(getattr(remote, "host", None), "user", None) or "user"
        self.dir = f"{REMOTE_BASE}-{user}/{run_id}"

    def version(self) -> str | None:
        r = self.remote.run(f"{self.k6_bin} version", check=False, timeout=30)
        return r.stdout.strip().splitlines()[0] if r.ok and r.stdout.strip() else None

    def prepare(self) -> None:
        self.remote.run(f"mkdir -p {shlex.quote(self.dir)}")
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
        args = " ".join(shlex.quote(a) for a in k6_args("loadtest.js", csv_path=raw))
        d = shlex.quote(self.dir)
        return (
            f"cd {d} && rm -f {shlex.quote(summary)} {shlex.quote(raw)} {shlex.quote(gz)} && "
            f"{{ env {env_str} {shlex.quote(self.k6_bin)} {args} > {shlex.quote(stem)}.log 2>&1 & "
            f"echo $! > k6.pid; wait $!; rc=$?; rm -f k6.pid; "
            f"echo {MARKER}; cat {shlex.quote(summary)} 2>/dev/null; "
            f"if [ $rc -ne 0 ]; then echo {MARKER}; tail -c 2000 {shlex.quote(stem)}.log; fi; exit $rc; }}"
        )

    def run(self, step: PlannedStep) -> dict[str, Any]:
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
