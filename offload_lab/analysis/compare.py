"""What a comparison of two runs adds to a report: short names for the runs, warnings when they
differ in more than one setting (or are one run), and the change from run A to run B per point."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fmt import MISSING, fmt_int, fmt_ms, fmt_num, fmt_rate
from .load import Run
from .metrics import StepMetrics
from .series import Series
from .table_model import Table
from .tables import PointRow, point_rows

NOT_IN_RUN = "—"  # the point is not part of that run
SPEC_TEXT_KEYS = ("name", "description")  # a spec's names, not what it runs
LABEL_KEYS = 2  # differing settings named in a run's label; the rest are counted
LABEL_VALUE_CHARS = 24
WARNING_VALUE_CHARS = 60


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def run_config(run: Run) -> dict[str, str]:
    """What a run was set up with, as `key -> value` text: the provisioned settings
    (`gateway.X`, `core.X`, ...), the spec's gateway settings over them, and the spec's other
    fields (`spec.rates`, ...)."""
    meta = run.meta
    config: dict[str, str] = {}
    for section, values in meta.settings.items():
        if isinstance(values, dict):
            config.update({f"{section}.{k}": _text(v) for k, v in values.items()})
    for key, value in meta.spec.items():
        if key in SPEC_TEXT_KEYS:
            continue
        if key == "gateway" and isinstance(value, dict):
            config.update({f"gateway.{k}": _text(v) for k, v in value.items()})
        else:
            config[f"spec.{key}"] = _text(value)
    return config


@dataclass(frozen=True)
class Difference:
    key: str  # e.g. "gateway.PUBLISHER", "spec.rates"
    a: str | None  # None: not set in that run
    b: str | None

    @property
    def name(self) -> str:
        """The setting's own name, e.g. PUBLISHER, rates."""
        return self.key.split(".", 1)[-1]


def config_differences(run_a: Run, run_b: Run) -> list[Difference]:
    a, b = run_config(run_a), run_config(run_b)
    return [Difference(k, a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


def _short(value: str | None, limit: int) -> str:
    text = "(unset)" if value is None else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


def same_run(run_a: Run, run_b: Run) -> bool:
    return run_a.path.resolve() == run_b.path.resolve() or run_a.run_id == run_b.run_id


def _started(run: Run) -> str:
    try:
        started = dt.datetime.fromisoformat(str(run.meta.started_at).replace("Z", "+00:00"))
    except ValueError:
        return run.run_id
    return started.strftime("%Y-%m-%d %H:%M")


def run_labels(run_a: Run, run_b: Run) -> list[str]:
    """Short names: the spec names when they differ; else the spec name and the settings that
    differ (`seed [PUBLISHER=pika_shared]`); else the spec name and the start of the run; a run
    compared with itself is (A) and (B)."""
    names = [r.meta.spec_name or r.run_id for r in (run_a, run_b)]
    diffs = config_differences(run_a, run_b)
    if names[0] != names[1]:
        labels = names
    elif same_run(run_a, run_b):
        labels = [f"{names[0]} (A)", f"{names[1]} (B)"]
    elif diffs:
        labels = []
        for side in ("a", "b"):
            named = [f"{d.name}={_short(getattr(d, side), LABEL_VALUE_CHARS)}" for d in diffs[:LABEL_KEYS]]
            if len(diffs) > LABEL_KEYS:
                named.append(f"+{len(diffs) - LABEL_KEYS} more")
            labels.append(f"{names[0]} [{', '.join(named)}]")
    else:
        labels = [f"{names[0]} {_started(run_a)}", f"{names[1]} {_started(run_b)}"]
    if labels[0] == labels[1]:
        labels = [f"{labels[0]} (A)", f"{labels[1]} (B)"]
    return labels


def comparison_warnings(
    run_a: Run, run_b: Run, series_a: Sequence[Series], series_b: Sequence[Series]
) -> list[str]:
    """Why the comparison may not say what it seems to: one run twice, more than one setting
    changed at once, no point in common."""
    if same_run(run_a, run_b):
        where = "one folder" if run_a.path.resolve() == run_b.path.resolve() else "two copies of it"
        return [
            f"run {run_a.run_id} is compared with itself ({where}): every change is 0 and says "
            "nothing about any setting"
        ]
    warnings = []
    diffs = config_differences(run_a, run_b)
    if len(diffs) > 1:
        names = [r.meta.spec_name or "?" for r in (run_a, run_b)]
        specs = f"the specs differ ({names[0]} vs {names[1]}) and " if names[0] != names[1] else ""
        listed = "; ".join(
            f"{d.key}: {_short(d.a, WARNING_VALUE_CHARS)} vs {_short(d.b, WARNING_VALUE_CHARS)}"
            for d in diffs
        )
        warnings.append(
            f"{specs}the runs differ in {len(diffs)} settings, not just the compared one, so a change "
            f"cannot be put down to any one of them: {listed}"
        )
    shared = {_key(r) for r in point_rows(series_a)} & {_key(r) for r in point_rows(series_b)}
    if not shared:
        warnings.append(
            "no point (series, mode, rate) is in both runs: there is no change from A to B to show"
        )
    return warnings


def _key(row: PointRow) -> tuple[str, str, float]:
    return (row.series.base, row.mode, row.rate)


@dataclass(frozen=True)
class ChangeFigure:
    title: str
    getter: Callable[[StepMetrics], float | None]
    fmt: Callable[[float | None], str]
    percent: bool = False  # a fraction shown in %: the change is in percentage points
    async_only: bool = False


CHANGE_FIGURES = (
    ChangeFigure("avg latency (ms)", lambda m: m.lat_avg, fmt_ms),
    ChangeFigure("p95 latency (ms)", lambda m: m.lat_p95, fmt_ms),
    ChangeFigure("p99 latency (ms)", lambda m: m.lat_p99, fmt_ms),
    ChangeFigure("throughput (resp/s)", lambda m: m.throughput, fmt_num),
    ChangeFigure("drop rate (%)", lambda m: m.drop_rate, lambda v: fmt_num(v, 2), percent=True),
    ChangeFigure("error rate (%)", lambda m: m.error_rate, lambda v: fmt_num(v, 2), percent=True),
    ChangeFigure("completion p95 (ms)", lambda m: m.comp_p95, fmt_ms, async_only=True),
    ChangeFigure("completion p99 (ms)", lambda m: m.comp_p99, fmt_ms, async_only=True),
    ChangeFigure("backlog peak (ready msgs)", lambda m: m.backlog_peak, fmt_int, async_only=True),
    ChangeFigure("drain time (s)", lambda m: m.drain_s, lambda v: fmt_num(v, 2), async_only=True),
    ChangeFigure("lost tasks", lambda m: m.lost, fmt_int, async_only=True),
)


def change_texts(a: float | None, b: float | None, fmt: Callable[[float | None], str]) -> tuple[str, str]:
    """(B - A, (B - A) / A) as text. Nothing to subtract when a side is unknown; no ratio when
    A is 0 (unless B is 0 too: no change)."""
    if a is None or b is None:
        return NOT_IN_RUN, NOT_IN_RUN
    delta = b - a
    delta_text = ("+" if delta > 0 else "-" if delta < 0 else "") + (fmt(abs(delta)) if delta else "0")
    if a == 0:
        return delta_text, "0.0%" if b == 0 else "n/a (A = 0)"
    return delta_text, f"{delta / abs(a) * 100:+.1f}%" if delta else "0.0%"


def _value(row: PointRow | None, figure: ChangeFigure) -> tuple[str, float | None]:
    """A point's figure (the median of its repeats) as (text, value in the unit shown)."""
    if row is None:
        return NOT_IN_RUN, None
    if row.point is None:
        return MISSING, None
    value = figure.getter(row.point)
    if value is not None and figure.percent:
        value *= 100
    return figure.fmt(value), value


def _ranges_overlap(ra: PointRow | None, rb: PointRow | None, figure: ChangeFigure) -> str:
    """Do the min-max ranges of the two points' repeats overlap (the change may be noise)?"""
    spans = []
    for row in (ra, rb):
        if row is None or row.point is None:
            return ""
        values = [figure.getter(r) for r in row.point.repeats or [row.point]]
        values = [v for v in values if v is not None]
        if not values:
            return ""
        spans.append((min(values), max(values)))
    if all(lo == hi for lo, hi in spans):
        return ""
    (a_lo, a_hi), (b_lo, b_hi) = spans
    return "yes" if a_lo <= b_hi and b_lo <= a_hi else "no"


def _side_headers(labels: Sequence[str]) -> list[str]:
    """`A: <label>`, or the label alone when it already says which run it is."""
    return [
        label if label.endswith(f"({side})") else f"{side}: {label}"
        for side, label in zip("AB", labels, strict=True)
    ]


def change_tables(
    series_a: Sequence[Series], series_b: Sequence[Series], labels: Sequence[str]
) -> list[Table]:
    """One table per figure: each point's value in A and in B, B - A and (B - A) / A; none when
    the runs have no point in common."""
    rows_a = {_key(r): r for r in point_rows(series_a)}
    rows_b = {_key(r): r for r in point_rows(series_b)}
    if not rows_a.keys() & rows_b.keys():
        return []  # nothing to compare (a warning says so)
    keys = sorted(rows_a.keys() | rows_b.keys(), key=lambda k: (k[2], k[1] != "sync", k[0]))
    repeats = any((r.point.n if r.point else 1) > 1 for r in [*rows_a.values(), *rows_b.values()])
    tables = []
    for figure in CHANGE_FIGURES:
        headers = ["rate (req/s)", "series", *_side_headers(labels), "B - A", "(B - A) / A"]
        if repeats:
            headers.append("ranges overlap")
        rows = []
        for key in keys:
            if figure.async_only and key[1] != "async":
                continue
            (a_text, a), (b_text, b) = _value(rows_a.get(key), figure), _value(rows_b.get(key), figure)
            delta, ratio = change_texts(a, b, figure.fmt)
            if figure.percent and delta != NOT_IN_RUN:
                delta += " pp"
            row = [fmt_rate(key[2]), key[0], a_text, b_text, delta, ratio]
            if repeats:
                row.append(_ranges_overlap(rows_a.get(key), rows_b.get(key), figure))
            rows.append(row)
        if rows:
            tables.append(Table(f"Change from A to B: {figure.title}", headers, rows, 2))
    if tables:  # said once, under the first table
        tables[0].notes.append(
            f"{NOT_IN_RUN}: the point is not in that run; {MISSING}: its step could not be read."
        )
        if repeats:
            tables[0].notes.append(
                "Values are the medians of each point's repeats; where the min-max ranges of A and B "
                "overlap, the change is within the spread of the repeats."
            )
    return tables


def runs_list(runs: Sequence[Run], labels: Sequence[str]) -> list[tuple[str, str]]:
    """(`A`, `label: run id (folder)`), once per run."""
    return [
        (side, f"{label}: run {run.run_id} ({Path(run.path)})")
        for side, run, label in zip("AB", runs, labels, strict=False)
    ]
