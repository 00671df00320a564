"""summary.md (run header, the original study's table, detail tables, warnings) and summary.csv."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.charts import Series
from analysis.load import Run
from analysis.metrics import LOADGEN_SATURATED_PCT, StepMetrics

NA = "n/a"

CSV_COLUMNS: list[tuple[str, str]] = [
    # (csv column, StepMetrics attribute or special key)
    ("run_id", "@run_id"),
    ("series", "@series"),
    ("file", "file"),
    ("index", "index"),
    ("label", "label"),
    ("mode", "mode"),
    ("rate", "rate"),
    ("duration_s", "duration_s"),
    ("pre_allocated_vus", "pre_allocated_vus"),
    ("max_vus", "max_vus"),
    ("work_ms", "work_ms"),
    ("attempted", "attempted"),
    ("iterations", "iterations"),
    ("dropped", "dropped"),
    ("drop_rate_pct", "@drop_rate_pct"),
    ("requests", "requests"),
    ("failed", "failed"),
    ("successes", "successes"),
    ("throughput_rps", "throughput"),
    ("error_rate_pct", "@error_rate_pct"),
    ("latency_avg_ms", "lat_avg"),
    ("latency_med_ms", "lat_med"),
    ("latency_p95_ms", "lat_p95"),
    ("latency_p99_ms", "lat_p99"),
    ("latency_max_ms", "lat_max"),
    ("accepted", "accepted"),
    ("completed", "completed"),
    ("dead_lettered", "dead_lettered"),
    ("lost", "lost"),
    ("nothing_lost", "@nothing_lost"),
    ("completion_p50_ms", "comp_p50"),
    ("completion_p95_ms", "comp_p95"),
    ("completion_p99_ms", "comp_p99"),
    ("completion_max_ms", "comp_max"),
    ("backlog_peak", "backlog_peak"),
    ("in_flight_peak", "in_flight_peak"),
    ("drain_s", "drain_s"),
    ("drained", "drained"),
    ("loadgen_cpu_pct", "loadgen_cpu_pct"),
    ("server_cpu_pct", "server_cpu_pct"),
    ("busy_vus", "busy_vus"),
    ("loadgen_flag", "loadgen_flag"),
]


# ---------------------------------------------------------------- number formatting
def fmt_ms(v: float | None) -> str:
    if v is None:
        return NA
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_num(v: float | None, digits: int = 1) -> str:
    if v is None:
        return NA
    if float(v).is_integer() and digits == 0:
        return f"{int(v):,}"
    return f"{v:,.{digits}f}"


def fmt_int(v: float | None) -> str:
    return NA if v is None else f"{int(v):,}"


def fmt_pct(fraction: float | None) -> str:
    return NA if fraction is None else f"{fraction * 100:.1f}%"


def fmt_rate(r: float) -> str:
    return f"{r:g}"


def nothing_lost_text(m: StepMetrics) -> str:
    if m.lost is None:
        return NA
    if m.drained is False:
        return f"no: queue never drained ({m.lost:+,} unaccounted)"
    if m.lost == 0:
        return "yes"
    if m.lost > 0:
        return f"no: {m.lost:,} lost"
    return f"no: {-m.lost:,} more done than accepted"


def loadgen_text(m: StepMetrics) -> str:
    cpu = NA if m.loadgen_cpu_pct is None else f"{m.loadgen_cpu_pct:.0f}%"
    if m.loadgen_flag == "saturated":
        return f"{cpu} ⚠ loadgen saturated"
    if m.loadgen_flag == "drops below VU cap":
        return f"{cpu} ⚠ drops below VU cap"
    if m.loadgen_flag == "VU cap":
        return f"{cpu} (VU cap)"
    return cpu


# ---------------------------------------------------------------- markdown helpers
def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> str:
    def esc(cell: str) -> str:
        return str(cell).replace("|", "\\|")

    align = ["---" if i < right_from else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _rows_by_rate(series: Sequence[Series]) -> list[float]:
    return sorted({p.rate for s in series for p in s.points})


def _point(s: Series, rate: float) -> StepMetrics | None:
    pts = [p for p in s.points if p.rate == rate]
    return pts[-1] if pts else None


def study_table(series: Sequence[Series]) -> str:
    """The original study's columns: avg latency, throughput, drop rate, per mode at each rate."""
    headers = ["rate (req/s)"]
    for s in series:
        headers += [f"{s.name} avg latency (ms)", f"{s.name} throughput (resp/s)", f"{s.name} drop rate"]
    rows = []
    for rate in _rows_by_rate(series):
        row = [fmt_rate(rate)]
        for s in series:
            p = _point(s, rate)
            row += [fmt_ms(p.lat_avg), fmt_num(p.throughput), fmt_pct(p.drop_rate)] if p else ["", "", ""]
        rows.append(row)
    return md_table(headers, rows)


def _ordered_points(series: Sequence[Series]) -> list[tuple[Series, StepMetrics]]:
    out = [(s, p) for s in series for p in s.points]
    order = {id(s): i for i, s in enumerate(series)}
    return sorted(out, key=lambda sp: (sp[1].rate, order[id(sp[0])], sp[1].index or 0))


def client_table(series: Sequence[Series]) -> str:
    headers = [
        "rate (req/s)",
        "series",
        "attempted",
        "avg (ms)",
        "p95 (ms)",
        "p99 (ms)",
        "max (ms)",
        "throughput (resp/s)",
        "drop rate",
        "error rate",
        "loadgen CPU",
    ]
    rows = [
        [
            fmt_rate(p.rate),
            s.name,
            fmt_int(p.attempted),
            fmt_ms(p.lat_avg),
            fmt_ms(p.lat_p95),
            fmt_ms(p.lat_p99),
            fmt_ms(p.lat_max),
            fmt_num(p.throughput),
            fmt_pct(p.drop_rate),
            fmt_pct(p.error_rate),
            loadgen_text(p),
        ]
        for s, p in _ordered_points(series)
    ]
    return md_table(headers, rows, right_from=2)


def async_table(series: Sequence[Series]) -> str | None:
    points = [(s, p) for s, p in _ordered_points(series) if p.is_async]
    if not points:
        return None
    headers = [
        "rate (req/s)",
        "series",
        "completion p50 (ms)",
        "completion p95 (ms)",
        "completion p99 (ms)",
        "backlog peak (ready msgs)",
        "in flight peak (unacked)",
        "drain time (s)",
        "accepted (2xx)",
        "completed",
        "dead-lettered",
        "nothing lost",
    ]
    rows = []
    for s, p in points:
        drain = NA if p.drain_s is None else f"{p.drain_s:.1f}"
        if p.drained is False:
            drain = "never drained"
        rows.append(
            [
                fmt_rate(p.rate),
                s.name,
                fmt_ms(p.comp_p50),
                fmt_ms(p.comp_p95),
                fmt_ms(p.comp_p99),
                fmt_int(p.backlog_peak),
                fmt_int(p.in_flight_peak),
                drain,
                fmt_int(p.accepted),
                fmt_int(p.completed),
                fmt_int(p.dead_lettered),
                nothing_lost_text(p),
            ]
        )
    return md_table(headers, rows, right_from=2)


def loadgen_notes(series: Sequence[Series]) -> list[str]:
    notes = []
    for s, p in _ordered_points(series):
        where = f"{s.name} at {fmt_rate(p.rate)}/s ({p.file})"
        server = "" if p.server_cpu_pct is None else f", busiest server host CPU {p.server_cpu_pct:.0f}%"
        if p.loadgen_flag == "saturated":
            notes.append(
                f"- **{where}: the load generator was saturated** (loadgen CPU {p.loadgen_cpu_pct:.0f}% > "
                f"{LOADGEN_SATURATED_PCT:.0f}%{server}); its figures measure k6, not the server."
            )
        elif p.loadgen_flag == "drops below VU cap":
            busy = NA if p.busy_vus is None else f"{p.busy_vus:.1f}"
            notes.append(
                f"- **{where}: {fmt_int(p.dropped)} iterations dropped although only ~{busy} of "
                f"{fmt_int(p.max_vus)} VUs were busy waiting on responses{server}**: the load generator "
                "(CPU, VUs created mid-test), not the server, was the limit."
            )
        elif p.loadgen_flag == "VU cap":
            busy = NA if p.busy_vus is None else f"{p.busy_vus:.1f}"
            notes.append(
                f"- {where}: {fmt_int(p.dropped)} iterations dropped with ~{busy} of {fmt_int(p.max_vus)} "
                "VUs busy waiting on responses (rate x latency reached maxVUs): the expected VU cap."
            )
    return notes


# ---------------------------------------------------------------- run header
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
            addr = f" {e['address']}" if e.get("address") else ""
            descr.append(f"{e.get('name', '?')}{addr}, {cpu_txt}")
        parts.append(f"{group}: " + "; ".join(descr))
    return "<br>".join(parts)


def _settings_text(settings: Any) -> str:
    if not isinstance(settings, dict) or not settings:
        return NA
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def run_header(run: Run, metrics: Sequence[StepMetrics]) -> list[tuple[str, str]]:
    meta = run.meta
    listed = meta.get("steps") if isinstance(meta.get("steps"), list) else None
    versions = meta.get("versions") if isinstance(meta.get("versions"), dict) else {}
    settings = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
    commit = str(meta.get("git_commit") or NA)
    if meta.get("git_dirty"):
        commit += " (dirty: uncommitted changes)"
    rows = [
        ("spec", str(meta.get("spec_name") or NA)),
        ("run id", run.run_id),
        ("status", str(meta.get("status") or NA)),
        (
            "started / ended",
            f"{meta.get('started_at') or NA} / {meta.get('ended_at') or NA}"
            + _duration_text(meta.get("started_at"), meta.get("ended_at")),
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
        ("git commit", commit),
        ("versions", ", ".join(f"{k}: {v}" for k, v in versions.items()) or NA),
        ("hosts", _hosts_text(meta.get("hosts"))),
        ("gateway settings", _settings_text(settings.get("gateway"))),
        ("core settings", _settings_text(settings.get("core"))),
    ]
    if meta.get("overrides"):
        rows.append(("overrides", str(meta["overrides"])))
    if meta.get("fixture"):
        rows.append(
            ("fixture", "yes: " + str(meta.get("fixture_notes") or "parts of this run are synthesized"))
        )
    return rows


def header_table(rows: Sequence[tuple[str, str]]) -> str:
    return md_table(["run", ""], [list(r) for r in rows], right_from=99)


# ---------------------------------------------------------------- whole documents
def tables_text(series: Sequence[Series]) -> str:
    """The tables (also printed to stdout)."""
    parts = [
        "## The original study's table (per mode and rate)\n",
        study_table(series),
        "\n## Client side, per step\n",
        client_table(series),
    ]
    at = async_table(series)
    if at:
        parts += ["\n## Async: completion latency, backlog, nothing lost\n", at]
    notes = loadgen_notes(series)
    if notes:
        parts += ["\n## Load generator\n", "\n".join(notes)]
    return "\n".join(parts) + "\n"


def _definitions() -> str:
    return (
        "Definitions: attempted = k6 iterations + dropped_iterations; drop rate = dropped / attempted; "
        "throughput = (http_reqs - failed) / the step's configured duration; error rate = "
        "http_req_failed / http_reqs; latency = k6 http_req_duration of completed requests; "
        "completion latency = core ack - gateway enqueue; nothing lost = accepted (2xx) = completed + "
        "dead-lettered after the queue drained. Loadgen CPU is the loadgen host's average CPU over the "
        f"step: ⚠ marks steps where the load generator, not the server, was the limit (CPU > "
        f"{LOADGEN_SATURATED_PCT:.0f}%, or drops while VUs were not all waiting on responses).\n"
    )


def _charts_section(charts: Sequence[Path], notes: Sequence[str]) -> str:
    lines = ["## Charts\n"]
    lines += [f"![{c.stem}]({c.name})" for c in charts]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _warnings_section(warnings: Sequence[str]) -> str:
    if not warnings:
        return "## Warnings\n\nNone: every listed step was read in full.\n"
    return "## Warnings\n\n" + "\n".join(f"- {w}" for w in warnings) + "\n"


def summary_md(
    run: Run,
    metrics: Sequence[StepMetrics],
    series: Sequence[Series],
    charts: Sequence[Path],
    chart_notes: Sequence[str],
    warnings: Sequence[str],
) -> str:
    parts = [
        f"# offload-lab report: {run.run_id}\n",
        header_table(run_header(run, metrics)) + "\n",
        tables_text(series),
        _definitions(),
        _charts_section(charts, chart_notes),
        _warnings_section(warnings),
    ]
    return "\n".join(parts)


def compare_md(
    runs: Sequence[tuple[Run, Sequence[StepMetrics]]],
    series: Sequence[Series],
    charts: Sequence[Path],
    chart_notes: Sequence[str],
    warnings: Sequence[str],
) -> str:
    parts = [f"# offload-lab comparison: {' vs '.join(r.run_id for r, _ in runs)}\n"]
    for run, metrics in runs:
        parts += [f"### {run.label}\n", header_table(run_header(run, metrics)) + "\n"]
    parts.append(
        "Series are named `<run label>: <step label>`; in the charts the first run is drawn solid, "
        "the second dashed.\n"
    )
    parts += [
        tables_text(series),
        _definitions(),
        _charts_section(charts, chart_notes),
        _warnings_section(warnings),
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------- csv
def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return repr(round(v, 6))
    return str(v)


def csv_rows(series: Sequence[Series], run_ids: dict[int, str]) -> list[list[str]]:
    rows = []
    for s, p in _ordered_points(series):
        row = []
        for _, attr in CSV_COLUMNS:
            if attr == "@run_id":
                v: Any = run_ids.get(id(s), "")
            elif attr == "@series":
                v = s.name
            elif attr == "@drop_rate_pct":
                v = None if p.drop_rate is None else p.drop_rate * 100
            elif attr == "@error_rate_pct":
                v = None if p.error_rate is None else p.error_rate * 100
            elif attr == "@nothing_lost":
                v = p.nothing_lost
            else:
                v = getattr(p, attr)
            row.append(_csv_value(v))
        rows.append(row)
    return rows


def write_csv(path: Path, series: Sequence[Series], run_ids: dict[int, str]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c for c, _ in CSV_COLUMNS])
    w.writerows(csv_rows(series, run_ids))
    path.write_text(buf.getvalue(), encoding="utf-8")
