"""summary.md (run header, tables, definitions, charts, warnings) and summary.csv."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .failures_tables import failures_tables
from .ledger_tables import faults_table, ledger_table
from .load import Run
from .metrics import LOADGEN_SATURATED_PCT, StepMetrics
from .run_header import header_table, run_header
from .series import Series
from .table_model import Table, to_markdown
from .tables import _ordered_points, async_table, client_table, loadgen_notes, study_table

CSV_COLUMNS: list[tuple[str, str]] = [
    # (csv column, StepMetrics attribute or special key)
    ("run_id", "@run_id"),
    ("series", "@series"),
    ("row", "@row"),  # step (one per step, every repeat) | median | min | max (a point's repeats)
    ("repeat", "repeat"),
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
    ("accepted_minus_core_counted", "counter_gap"),
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
    ("limit", "limit"),
    ("latency_source", "latency_source"),
]


def report_tables(series: Sequence[Series], run: Run | None = None) -> list[Table]:
    """The point tables, then (for a run with them) the ledger, faults and failures tables per
    step."""
    tables = [study_table(series), client_table(series)]
    at = async_table(series)
    if at:
        tables.append(at)
    if run is not None:
        tables += [t for t in (ledger_table(run), faults_table(run)) if t is not None]
        tables += failures_tables(run)
    return tables


def _table_parts(tables: Sequence[Table]) -> list[str]:
    parts = []
    for table in tables:
        parts += [f"\n## {table.title}\n", to_markdown(table)]
        parts += [f"\n{n}" for n in table.notes]
    return parts


def tables_md(tables: Sequence[Table]) -> str:
    return "\n".join(_table_parts(tables)).lstrip("\n") + "\n"


def tables_text(series: Sequence[Series], run: Run | None = None) -> str:
    """The report's tables as markdown, with the load generator notes."""
    parts = _table_parts(report_tables(series, run))
    notes = loadgen_notes(series)
    if notes:
        parts += ["\n## Load generator\n", "\n".join(notes)]
    return "\n".join(parts).lstrip("\n") + "\n"


def definitions() -> str:
    return (
        "Definitions: attempted = k6 iterations + dropped_iterations; drop rate = dropped / attempted; "
        "throughput = (http_reqs - failed) / the step's configured duration; error rate = "
        "http_req_failed / http_reqs; latency = k6 http_req_duration of completed requests, computed from "
        "every request's sample when the run kept them; completion latency = core ack - gateway enqueue; "
        "done, dead-lettered = distinct task ids in the ledger's outcome records (without a ledger: the "
        "core's counters); lost = accepted task ids the ledger holds no outcome for (not dead-lettered, "
        "beyond what is still queued); without a ledger no loss is counted, only accepted minus the "
        "core's completed and dead-lettered counters (which a core restart resets). Loadgen CPU is "
        "the loadgen host's average CPU over the step: ⚠ marks steps where the load generator, not the "
        f"server, was the limit (CPU > {LOADGEN_SATURATED_PCT:.0f}%, or drops while VUs were not all "
        "waiting on responses). With repeats, each figure is the median of the point's repeats with its "
        "min-max range, and a flag on any repeat stays on the point.\n"
    )


def _charts_section(charts: Sequence[Path], notes: Sequence[str], timelines: Sequence[Path]) -> str:
    lines = ["## Charts\n"]
    lines += [f"![{c.stem}]({c.name})" for c in charts]
    lines += [f"- {n}" for n in notes]
    if timelines:
        lines += ["", "## Timelines (second by second, one per step)\n"]
        lines += [f"- [{t.stem}](timelines/{t.name})" for t in timelines]
    return "\n".join(lines) + "\n"


def warnings_section(warnings: Sequence[str]) -> str:
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
    timelines: Sequence[Path] = (),
) -> str:
    parts = [
        f"# offload-lab report: {run.run_id}\n",
        "The same report as one page, with every chart and timeline: [index.html](index.html).\n",
        header_table(run_header(run, metrics)) + "\n",
        tables_text(series, run),
        definitions(),
        _charts_section(charts, chart_notes, timelines),
        warnings_section(warnings),
    ]
    return "\n".join(parts)


def compare_md(
    runs: Sequence[tuple[Run, Sequence[StepMetrics]]],
    listed: Sequence[tuple[str, str]],
    compared: Sequence[str],
    changes: Sequence[Table],
    series: Sequence[Series],
    charts: Sequence[Path],
    chart_notes: Sequence[str],
    warnings: Sequence[str],
) -> str:
    """The comparison: the two runs named once, what makes the comparison doubtful, the change
    from A to B per point, then each run's tables, header and the charts."""
    parts = [f"# offload-lab comparison: {runs[0][0].label} vs {runs[1][0].label}\n"]
    parts.append("\n".join(f"- **{side}** = {text}" for side, text in listed) + "\n")
    parts += [f"> ⚠ {w}\n" for w in compared]
    parts.append(
        "Series are named `<run label>: <step label>`. In the charts run A is drawn solid with filled "
        "circles, run B dashed with hollow squares, each series in its own colour.\n"
    )
    parts.append(tables_md(changes))
    parts.append(tables_text(series))
    parts.append(definitions())
    for run, metrics in runs:
        parts += [f"### {run.label}\n", header_table(run_header(run, metrics)) + "\n"]
    parts += [_charts_section(charts, chart_notes, ()), warnings_section(warnings)]
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


def _csv_row(s: Series, p: StepMetrics, run_id: str, kind: str, pick=None) -> list[str]:
    row = []
    for _, attr in CSV_COLUMNS:
        if attr == "@run_id":
            v: Any = run_id
        elif attr == "@series":
            v = s.name
        elif attr == "@row":
            v = kind
        elif pick is not None and attr in pick:
            v = pick[attr]
        elif attr == "@drop_rate_pct":
            v = None if p.drop_rate is None else p.drop_rate * 100
        elif attr == "@error_rate_pct":
            v = None if p.error_rate is None else p.error_rate * 100
        elif attr == "@nothing_lost":
            v = p.nothing_lost
        else:
            v = getattr(p, attr)
        row.append(_csv_value(v))
    return row


def _extreme(p: StepMetrics, which: int) -> dict[str, Any]:
    """The min (0) or max (1) of every numeric figure over a point's repeats."""
    out: dict[str, Any] = {}
    for _, attr in CSV_COLUMNS:
        if attr.startswith("@"):
            continue
        value = getattr(p, attr)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        spread = p.spread(attr)
        if spread is not None:
            out[attr] = spread[which]
    for pct, attr in (("@drop_rate_pct", "drop_rate"), ("@error_rate_pct", "error_rate")):
        spread = p.spread(attr)
        if spread is not None:
            out[pct] = spread[which] * 100
    return out


def csv_rows(series: Sequence[Series], run_ids: dict[int, str]) -> list[list[str]]:
    """One `step` row per step (every repeat); a point with repeats adds `median`, `min`, `max`."""
    rows = []
    for s, p in _ordered_points(series):
        run_id = run_ids.get(id(s), "")
        for r in p.repeats or [p]:
            rows.append(_csv_row(s, r, run_id, "step"))
        if p.repeats:
            rows.append(_csv_row(s, p, run_id, "median"))
            rows.append(_csv_row(s, p, run_id, "min", _extreme(p, 0)))
            rows.append(_csv_row(s, p, run_id, "max", _extreme(p, 1)))
    return rows


def write_csv(path: Path, series: Sequence[Series], run_ids: dict[int, str]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c for c, _ in CSV_COLUMNS])
    w.writerows(csv_rows(series, run_ids))
    path.write_text(buf.getvalue(), encoding="utf-8")
