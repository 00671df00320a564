"""The run's metadata as (key, value) rows: spec, commit, versions, hosts and their CPU pins,
settings. Shown at the top of summary.md and of index.html."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .fmt import NA
from .load import Run
from .metrics import StepMetrics
from .table_model import md_table


def _distinct(values) -> str:
    vals = sorted({v for v in values if v is not None}, key=lambda v: (str(type(v)), v))
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vals) if vals else NA


def _duration_text(start: Any, end: Any) -> str:
    try:
        a = dt.datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        b = dt.datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    except ValueError:
        return ""
    secs = (b - a).total_seconds()
    return f" ({secs / 60:.1f} min)" if secs >= 120 else f" ({secs:.0f} s)"


def _hosts_text(hosts: Any) -> str:
    if not isinstance(hosts, dict) or not hosts:
        return NA
    parts = []
    for group, entries in hosts.items():
        if not isinstance(entries, list):
            entries = [entries]
        descr = []
        for e in entries:
            if not isinstance(e, dict):
                continue
            cpus = e.get("cpus")
            cpu_txt = f"{cpus} CPU{'s' if cpus != 1 else ''}" if cpus is not None else "CPUs unknown"
            if e.get("cpu_list"):
                cpu_txt += f" (pinned to CPU {e['cpu_list']})"
            addr = f" {e['address']}" if e.get("address") else ""
            descr.append(f"{e.get('name', '?')}{addr}, {cpu_txt}")
        parts.append(f"{group}: " + "; ".join(descr))
    return "\n".join(parts)


def _settings_text(settings: Any) -> str:
    if not isinstance(settings, dict) or not settings:
        return NA
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def broker_line(facts: Any) -> str:
    """A step's broker facts (offload_lab/services/broker_facts.py) in words:
    'RabbitMQ 4.0.5 (Erlang 27.3.4.1); tasks: classic v2, tasks.done: classic v2'."""
    if not isinstance(facts, dict) or not facts.get("rabbitmq_version"):
        return "not recorded"
    parts = []
    for name, queue in (facts.get("queues") or {}).items():
        if not isinstance(queue, dict) or "error" in queue:
            continue
        if queue.get("type") == "classic":
            version = queue.get("classic_version")
            parts.append(f"{name}: classic v{version}" if version else f"{name}: classic")
        elif queue.get("type") == "quorum":
            limit = queue.get("delivery_limit")
            parts.append(f"{name}: quorum, delivery limit {limit if limit is not None else 'none'}")
        else:
            parts.append(f"{name}: {queue.get('type')}")
    head = f"RabbitMQ {facts['rabbitmq_version']} (Erlang {facts.get('erlang_version') or '?'})"
    return head + ("; " + ", ".join(parts) if parts else "")


def brokers_text(run: Run) -> str:
    """The distinct broker lines of the run's steps (one, unless the broker changed mid-run)."""
    lines = dict.fromkeys(broker_line((s.broker or {}).get("facts")) for s in run.steps)
    return "\n".join(lines) or NA


def instruments_line(instruments: Any) -> str:
    """A step's instruments (offload_lab/plan/instruments.py) in words."""
    if not isinstance(instruments, dict):
        return "not recorded (before instruments were settings: all on, ledger on the broker)"
    host, queue = instruments.get("host_sampling_s"), instruments.get("queue_sampling_s")
    stats = instruments.get("broker_stats_s")
    return (
        f"ledger {instruments.get('ledger') or '?'}; "
        f"samples {'on' if instruments.get('samples') else 'off'}; "
        f"host sampling {f'every {host:g} s' if host else 'off'}; "
        f"queue depth every {f'{queue:g}' if isinstance(queue, int | float) else '?'} s"
        + (f"; broker statistics every {stats:g} s" if isinstance(stats, int | float) else "")
    )


def instruments_text(run: Run) -> str:
    """The distinct instrument lines of the run's steps, each with the series that used it."""
    lines: dict[str, list[str]] = {}
    for s in run.steps:
        labels = lines.setdefault(instruments_line(s.instruments), [])
        if s.label not in labels:
            labels.append(s.label)
    if len(lines) == 1:
        return next(iter(lines))
    return "\n".join(f"{', '.join(labels)}: {line}" for line, labels in lines.items()) or NA


def calibration_line(calibration: Any) -> str:
    """A run's calibration point (offload_lab/run/calibration.py), e.g.
    'POST /noop at 200/s for 10 s: avg 1.2 ms, p95 2.0 ms, p99 3.1 ms'."""
    if not isinstance(calibration, dict):
        return "not recorded (runs before calibration existed)"
    endpoint = calibration.get("endpoint", "POST /noop")
    head = f"{endpoint} at {calibration.get('rate')}/s for {calibration.get('duration_s')} s"
    if calibration.get("error"):
        return f"{head}: failed ({calibration['error']})"
    figures = ", ".join(
        f"{name} {calibration[key]:g} ms"
        for name, key in (("avg", "avg_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"))
        if isinstance(calibration.get(key), int | float)
    )
    extra = "".join(
        f", {name} {calibration[key]:g} %"
        for name, key in (("dropped", "dropped_pct"), ("failed", "failed_pct"))
        if calibration.get(key)
    )
    return f"{head}: {figures}{extra}"


def run_header(run: Run, metrics: Sequence[StepMetrics]) -> list[tuple[str, str]]:
    meta = run.meta
    listed = run.listed
    commit = str(meta.git_commit or NA)
    if meta.git_dirty:
        commit += " (dirty: uncommitted changes)"
    rows = [
        ("spec", meta.spec_name or NA),
        ("run id", run.run_id),
        ("status", meta.status or NA),
        (
            "started / ended",
            f"{meta.started_at or NA} / {meta.ended_at or NA}"
            + _duration_text(meta.started_at, meta.ended_at),
        ),
        (
            "steps charted",
            f"{len(metrics)}" + (f" of {len(listed)} listed in run.json" if listed is not None else ""),
        ),
        ("step duration (s)", _distinct(m.duration_s for m in metrics)),
        (
            "preAllocatedVUs / maxVUs",
            f"{_distinct(m.pre_allocated_vus for m in metrics)} / {_distinct(m.max_vus for m in metrics)}",
        ),
        ("work time (ms)", _distinct(m.work_ms for m in metrics)),
        ("rates (req/s)", _distinct(m.rate for m in metrics)),
        ("series", ", ".join(dict.fromkeys(m.label for m in metrics)) or NA),
        ("repeats per point", _distinct(Counter((m.label, m.mode, m.rate) for m in metrics).values())),
        ("git commit", commit),
        ("versions", ", ".join(f"{k}: {v}" for k, v in meta.versions.items()) or NA),
        ("broker and queues", brokers_text(run)),
        ("instruments", instruments_text(run)),
        ("calibration", calibration_line(meta.calibration)),
        ("hosts", _hosts_text(meta.hosts)),
        ("gateway settings", _settings_text(meta.settings.get("gateway"))),
        ("core settings", _settings_text(meta.settings.get("core"))),
    ]
    if meta.overrides:
        rows.append(("overrides", str(meta.overrides)))
    if meta.fixture:
        rows.append(("fixture", "yes: " + (meta.fixture_notes or "parts of this run are synthesized")))
    return rows


def header_table(rows: Sequence[tuple[str, str]]) -> str:
    return md_table(["run", ""], [[k, v.replace("\n", "<br>")] for k, v in rows], right_from=99)
