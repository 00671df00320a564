"""The report's tables as data (offload_lab.analysis.table_model.Table): the original study's table, the
client side per point, the async side per point, and the run's header."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .fmt import MISSING, NA, fmt_int, fmt_ms, fmt_num, fmt_pct, fmt_rate, ranged, spread_text
from .load import UnreadableStep
from .metrics import LOADGEN_SATURATED_PCT, StepMetrics
from .series import Series
from .table_model import Table


def nothing_lost_text(m: StepMetrics) -> str:
    """The ledger's answer (by task id); without a ledger, only what the core's counters can say,
    which is never a loss count (a core restart resets them)."""
    if m.lost is not None:
        if m.lost == 0:
            return "yes" if m.n == 1 else f"yes ({m.n} of {m.n})"
        return f"no: {m.lost:,.0f} lost" + (f" (worst of {m.n} repeats)" if m.n > 1 else "")
    if m.counter_gap is None:
        return NA
    drained = "" if m.drained is not False else ", queue never drained"
    if m.counter_gap == 0:
        return f"no ledger; the core's counters match{drained}"
    return f"no ledger; accepted - the core's counters = {m.counter_gap:+,.0f}{drained}"


def loadgen_text(m: StepMetrics) -> str:
    cpu = NA if m.loadgen_cpu_pct is None else f"{m.loadgen_cpu_pct:.0f}%"
    where = f" in {m.flagged_repeats} of {m.n} repeats" if m.n > 1 and m.flagged_repeats else ""
    if m.loadgen_flag == "saturated":
        return f"{cpu} ⚠ loadgen saturated{where}"
    if m.loadgen_flag == "drops below VU cap":
        return f"{cpu} ⚠ drops below VU cap{where}"
    if m.loadgen_flag == "VU cap":
        return f"{cpu} (VU cap)"
    return cpu


@dataclass
class PointRow:
    """One point of a series in the tables: its figures, and its steps that could not be read
    (a point none of whose steps could be read has no figures)."""

    series: Series
    mode: str
    rate: float
    point: StepMetrics | None
    unreadable: list[UnreadableStep] = field(default_factory=list)

    @property
    def n_text(self) -> str:
        n = self.point.n if self.point else 0
        return f"{n} (+{len(self.unreadable)} {MISSING})" if self.unreadable else str(n)


def point_rows(series: Sequence[Series]) -> list[PointRow]:
    """Every point of every series, readable or not, by rate, then series."""
    rows: dict[tuple[int, str, float], PointRow] = {}
    for s in series:
        for p in s.points:
            rows[(id(s), p.mode, p.rate)] = PointRow(s, p.mode, p.rate, p)
        for u in s.unreadable:
            if u.mode is not None and u.rate is not None:
                row = rows.setdefault((id(s), u.mode, u.rate), PointRow(s, u.mode, u.rate, None))
                row.unreadable.append(u)
    order = {id(s): i for i, s in enumerate(series)}
    return sorted(
        rows.values(),
        key=lambda r: (r.rate, order[id(r.series)], (r.point.index or 0) if r.point else 0),
    )


def _missing_note(rows: Sequence[PointRow]) -> list[str]:
    if not any(r.unreadable for r in rows):
        return []
    return [f"{MISSING}: a step of that point could not be read (the Warnings name its file)."]


def _rates(series: Sequence[Series]) -> list[float]:
    return sorted({r.rate for r in point_rows(series)})


def _point(s: Series, rate: float) -> StepMetrics | None:
    pts = [p for p in s.points if p.rate == rate]
    return pts[-1] if pts else None


def _is_missing(s: Series, rate: float) -> bool:
    return any(u.rate == rate for u in s.unreadable)


def _ordered_points(series: Sequence[Series]) -> list[tuple[Series, StepMetrics]]:
    out = [(s, p) for s in series for p in s.points]
    order = {id(s): i for i, s in enumerate(series)}
    return sorted(out, key=lambda sp: (sp[1].rate, order[id(sp[0])], sp[1].index or 0))


def _repeats_note(series: Sequence[Series]) -> list[str]:
    n = max((p.n for s in series for p in s.points), default=1)
    if n <= 1:
        return []
    return [f"Each figure is the median of {n} repeats, with the min-max range in brackets."]


def study_table(series: Sequence[Series]) -> Table:
    """The original study's columns: avg latency, throughput, drop rate, per mode at each rate."""
    headers = ["rate (req/s)"]
    for s in series:
        headers += [f"{s.name} avg latency (ms)", f"{s.name} throughput (resp/s)", f"{s.name} drop rate"]
    rows = []
    for rate in _rates(series):
        row = [fmt_rate(rate)]
        for s in series:
            p = _point(s, rate)
            if p is None:
                row += [MISSING if _is_missing(s, rate) else ""] * 3
                continue
            row += [ranged(p, "lat_avg", fmt_ms), ranged(p, "throughput", fmt_num)]
            row.append(ranged(p, "drop_rate", fmt_pct))
        rows.append(row)
    notes = _repeats_note(series) + _missing_note(point_rows(series))
    return Table("The original study's table (per mode and rate)", headers, rows, 1, notes)


def client_table(series: Sequence[Series]) -> Table:
    headers = [
        "rate (req/s)",
        "series",
        "n",
        "attempted",
        "avg (ms)",
        "p95 (ms)",
        "p99 (ms)",
        "max (ms)",
        "p95 spread (ms)",
        "throughput (resp/s)",
        "drop rate",
        "error rate",
        "loadgen CPU",
        "limit",
    ]
    table_rows = point_rows(series)
    rows = []
    for r in table_rows:
        p = r.point
        if p is None:
            rows.append([fmt_rate(r.rate), r.series.name, r.n_text] + [MISSING] * (len(headers) - 3))
            continue
        rows.append(
            [
                fmt_rate(p.rate),
                r.series.name,
                r.n_text,
                ranged(p, "attempted", fmt_int),
                ranged(p, "lat_avg", fmt_ms),
                ranged(p, "lat_p95", fmt_ms),
                ranged(p, "lat_p99", fmt_ms),
                ranged(p, "lat_max", fmt_ms),
                spread_text(p, "lat_p95", fmt_ms),
                ranged(p, "throughput", fmt_num),
                ranged(p, "drop_rate", fmt_pct),
                ranged(p, "error_rate", fmt_pct),
                loadgen_text(p),
                p.limit or NA,
            ]
        )
    sources = {p.latency_source for _, p in _ordered_points(series)}
    notes = _repeats_note(series) + [
        "Latency percentiles computed from "
        + (" and ".join(sorted(sources)) if sources else NA)
        + " (per-request samples agree with k6's summary within rounding; any disagreement is a warning)."
    ]
    notes.append(
        "limit: the first stage (client, gateway, core) whose need, rate x time held (Little's law), "
        'exceeds its places; open: none (docs/design.md, "What limits a step"); n/a: not recorded.'
    )
    notes += _missing_note(table_rows)
    return Table("Client side, per point", headers, rows, 2, notes)


def async_table(series: Sequence[Series]) -> Table | None:
    table_rows = [r for r in point_rows(series) if r.mode == "async"]
    if not table_rows:
        return None
    headers = [
        "rate (req/s)",
        "series",
        "n",
        "completion p50 (ms)",
        "completion p95 (ms)",
        "completion p99 (ms)",
        "completion p99 spread (ms)",
        "backlog peak (ready msgs)",
        "in flight peak (unacked)",
        "drain time (s)",
        "accepted (2xx)",
        "done",
        "dead-lettered",
        "nothing lost",
    ]
    rows = []
    for r in table_rows:
        p = r.point
        if p is None:
            rows.append([fmt_rate(r.rate), r.series.name, r.n_text] + [MISSING] * (len(headers) - 3))
            continue
        drain = "never drained" if p.drained is False else ranged(p, "drain_s", lambda v: fmt_num(v, 1))
        rows.append(
            [
                fmt_rate(p.rate),
                r.series.name,
                r.n_text,
                ranged(p, "comp_p50", fmt_ms),
                ranged(p, "comp_p95", fmt_ms),
                ranged(p, "comp_p99", fmt_ms),
                spread_text(p, "comp_p99", fmt_ms),
                ranged(p, "backlog_peak", fmt_int),
                ranged(p, "in_flight_peak", fmt_int),
                drain,
                ranged(p, "accepted", fmt_int),
                ranged(p, "completed", fmt_int),
                ranged(p, "dead_lettered", fmt_int),
                nothing_lost_text(p),
            ]
        )
    notes = _repeats_note(series) + _missing_note(table_rows)
    return Table("Async: completion latency, backlog, nothing lost", headers, rows, 2, notes)


def loadgen_notes(series: Sequence[Series]) -> list[str]:
    notes = []
    for s, p in _ordered_points(series):
        where = f"{s.name} at {fmt_rate(p.rate)}/s ({p.file})"
        if p.n > 1 and p.flagged_repeats:
            flagged = [r for r in p.repeats if r.loadgen_flag in ("saturated", "drops below VU cap")]
            where += f", in repeat{'s' if len(flagged) > 1 else ''} " + ", ".join(
                f"r{r.repeat} ({r.file})" for r in flagged
            )
        server = "" if p.server_cpu_pct is None else f", busiest server host CPU {p.server_cpu_pct:.0f}%"
        if p.loadgen_flag == "saturated":
            notes.append(
                f"- **{where}: the load generator was saturated** (loadgen CPU "
                f"{fmt_num(p.loadgen_cpu_pct, 0)}% > {LOADGEN_SATURATED_PCT:.0f}%{server}); its figures "
                "measure k6, not the server."
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
