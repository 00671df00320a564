"""Charts against offered rate, every series (step label) on the same axes; a point with
repeats is drawn at its median with a min-max bar. Agg backend only."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from .metrics import StepMetrics  # noqa: E402
from .series import Series, series_colors  # noqa: E402

LOG_RATIO = 20.0  # log scale when max/min across the plotted values exceeds this
# completion percentiles drawn at one point: a small filled circle inside a hollow square inside
# a larger hollow triangle, so that all three stay visible when they coincide
PERCENTILE_STYLES = {
    "p50": {"marker": "o", "markersize": 4.5, "hollow": False, "linewidth": 1.0},
    "p95": {"marker": "s", "markersize": 7.5, "hollow": True, "linewidth": 1.4},
    "p99": {"marker": "^", "markersize": 11.0, "hollow": True, "linewidth": 1.8},
}
X_LABEL = "offered rate (requests/s)"


def _values(
    series: Sequence[Series], getters: Sequence[Callable[[StepMetrics], float | None]]
) -> list[float]:
    """Every value a figure draws: each point's median and the repeats behind it (range bars)."""
    out = []
    for s in series:
        for p in s.points:
            for g in getters:
                for q in [p, *p.repeats]:
                    v = g(q)
                    if v is not None and math.isfinite(v):
                        out.append(v)
    return out


def wants_log(values: Sequence[float]) -> bool:
    """True when the positive values span more than LOG_RATIO (e.g. sync vs async latency)."""
    pos = [v for v in values if v > 0]
    return len(pos) >= 2 and max(pos) / min(pos) > LOG_RATIO


def _xy(s: Series, getter: Callable[[StepMetrics], float | None], scale: float = 1.0):
    xs, ys = [], []
    for p in s.points:
        v = getter(p)
        xs.append(p.rate)
        ys.append(v * scale if v is not None else math.nan)
    return xs, ys


def _range_bars(
    ax: Axes, s: Series, getter: Callable[[StepMetrics], float | None], color: str, scale: float = 1.0
) -> None:
    """Min-max over a point's repeats as an error bar around its median."""
    xs, ys, below, above = [], [], [], []
    for p in s.points:
        mid = getter(p)
        values = [v for v in (getter(r) for r in p.repeats) if v is not None]
        if mid is None or len(values) < 2:
            continue
        xs.append(p.rate)
        ys.append(mid * scale)
        below.append(max(0.0, (mid - min(values)) * scale))
        above.append(max(0.0, (max(values) - mid) * scale))
    if xs:
        ax.errorbar(xs, ys, yerr=[below, above], fmt="none", ecolor=color, elinewidth=1.2, capsize=4)


def _rate_ticks(ax: Axes, series: Sequence[Series]) -> None:
    rates = sorted({p.rate for s in series for p in s.points})
    if 0 < len(rates) <= 12:
        ax.set_xticks(rates)
        ax.set_xticklabels([f"{r:g}" for r in rates])
    ax.set_xlabel(X_LABEL)


def _zero_floor(ax: Axes, data_max: float, min_top: float = 0.0) -> None:
    """Linear axes start just below 0, so that a series lying at 0 stays visible, and end a
    little above the highest point, so that points at the maximum do not sit on the frame."""
    top = max(ax.get_ylim()[1], 1.08 * data_max) if data_max > 0 else max(min_top, 1.0)
    top = max(top, min_top)
    ax.set_ylim(bottom=-0.03 * top, top=top)


def _no_data(ax: Axes, title: str, text: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(ax: Axes, handles: list | None = None) -> None:
    """Up to 3 entries inside the axes; more go outside on the right, clear of the data."""
    if handles is None:
        handles, _ = ax.get_legend_handles_labels()
    if len(handles) > 3:
        ax.legend(
            handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0
        )
    else:
        ax.legend(handles=handles, fontsize="small")


def _finish(
    ax: Axes, title: str, ylabel: str, series: Sequence[Series], logy: bool, handles: list | None = None
) -> None:
    ax.set_title(title + (" (log scale)" if logy else ""))
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
        # plain numbers (0.5, 1, 2, 5, 10, ...) read better than 10^n in ms
        ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.10g}"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    _rate_ticks(ax, series)
    ax.grid(True, which="major", alpha=0.35)
    if logy:
        ax.grid(True, which="minor", alpha=0.12)
    _legend(ax, handles)


def whole_number_ticks(ax: Axes) -> None:
    """Counts (requests, drops, messages) get whole-number ticks, even on an all-zero axis."""
    ax.yaxis.set_major_locator(ticker.MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True))


def _marker_style(color: str, marker: str, markersize: float, hollow: bool) -> dict:
    return {
        "marker": marker,
        "markersize": markersize,
        "markeredgecolor": color,
        "markerfacecolor": "none" if hollow else color,
        "markeredgewidth": 1.5 if hollow else 1.0,
    }


def plot_metric(
    ax: Axes,
    series: Sequence[Series],
    colors: dict[str, str],
    getter: Callable[[StepMetrics], float | None],
    title: str,
    ylabel: str,
    *,
    allow_log: bool = True,
    scale: float = 1.0,
    offered_line: bool = False,
    min_top: float = 0.0,
    counts: bool = False,
) -> bool:
    """One line per series, in its colour, with its run's marker and line style. Returns False
    (and says so on the axes) if no series has a value. `counts`: whole numbers on the y axis."""
    values = _values(series, [getter])
    if not values:
        _no_data(ax, title, "no data for this figure")
        return False
    for s in series:
        xs, ys = _xy(s, getter, scale)
        if all(math.isnan(y) for y in ys):
            continue
        color = colors[s.name]
        size = 9.0 if s.style.hollow else 5.5  # a hollow marker rings a filled one at the same spot
        ax.plot(
            xs,
            ys,
            linestyle=s.linestyle,
            color=color,
            label=s.name,
            **_marker_style(color, s.style.marker, size, s.style.hollow),
        )
        _range_bars(ax, s, getter, color, scale)
    if offered_line:
        rates = sorted({p.rate for s in series for p in s.points})
        top = max(rates) if rates else 1
        ax.plot([0, top], [0, top], color="0.5", linestyle=(0, (4, 3)), linewidth=1, label="offered (y = x)")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
    logy = allow_log and wants_log([v * scale for v in values])
    _finish(ax, title, ylabel, series, logy)
    if not logy and not offered_line:
        _zero_floor(ax, max(values) * scale, min_top)
    if counts and not logy:
        whole_number_ticks(ax)
    return True


def plot_completion(ax: Axes, series: Sequence[Series], colors: dict[str, str]) -> bool:
    title = "Async completion latency (enqueue to core ack)"
    series = [s for s in series if s.is_async]
    getters = {"p50": lambda m: m.comp_p50, "p95": lambda m: m.comp_p95, "p99": lambda m: m.comp_p99}
    values = _values(series, list(getters.values()))
    if not values:
        _no_data(ax, title, "no async steps with core completion stats")
        return False
    drawn = [s for s in series if any(g(p) is not None for p in s.points for g in getters.values())]
    for s in drawn:
        color = colors[s.name]
        for pname in ("p99", "p95", "p50"):  # the smallest marker last, on top
            getter, st = getters[pname], PERCENTILE_STYLES[pname]
            xs, ys = _xy(s, getter)
            ax.plot(
                xs,
                ys,
                linestyle=s.linestyle,
                linewidth=st["linewidth"],
                color=color,
                **_marker_style(color, st["marker"], st["markersize"], st["hollow"]),
            )
            _range_bars(ax, s, getter, color)
    # legend: one entry per series (colour, line style) and one per percentile (marker); the
    # percentile markers take the series' colour when there is one series, else a neutral one
    key_color = colors[drawn[0].name] if len(drawn) == 1 else "0.25"
    handles = [Line2D([0], [0], color=colors[s.name], linestyle=s.linestyle, label=s.name) for s in drawn]
    handles += [
        Line2D(
            [0],
            [0],
            color=key_color,
            linestyle="none",
            label=pname,
            **_marker_style(key_color, st["marker"], st["markersize"], st["hollow"]),
        )
        for pname, st in PERCENTILE_STYLES.items()
    ]
    logy = wants_log(values)
    _finish(ax, title, "completion latency (ms)", series, logy, handles)
    if not logy:
        _zero_floor(ax, max(values))
    return True


def plot_backlog_peak(ax: Axes, series: Sequence[Series], colors: dict[str, str]) -> bool:
    return plot_metric(
        ax,
        [s for s in series if s.is_async],
        colors,
        lambda m: m.backlog_peak,
        "Async backlog: peak messages waiting (ready)",
        "messages",
        allow_log=False,
        min_top=5.0,
        counts=True,
    )


def plot_backlog(ax_peak: Axes, ax_drain: Axes, series: Sequence[Series], colors: dict[str, str]) -> bool:
    series = [s for s in series if s.is_async]
    ok_peak = plot_backlog_peak(ax_peak, series, colors)
    ok_drain = plot_metric(
        ax_drain,
        series,
        colors,
        lambda m: m.drain_s,
        "Async backlog: drain time after load end",
        "drain time (s)",
        allow_log=False,
    )
    # mark steps whose queue never drained
    for s in series:
        undrained = [p for p in s.points if p.drained is False]
        if undrained:
            ax_drain.scatter(
                [p.rate for p in undrained],
                [0] * len(undrained),
                marker="x",
                color=colors[s.name],
                s=60,
                label=f"{s.name}: never drained",
            )
            _legend(ax_drain)
    return ok_peak or ok_drain


@dataclass(frozen=True)
class LineFigure:
    title: str
    ylabel: str
    getter: Callable[[StepMetrics], float | None]
    scale: float = 1.0  # e.g. 100 for fractions shown as %
    allow_log: bool = True  # log scale when the series differ by more than LOG_RATIO
    offered_line: bool = False  # draw y = x (throughput vs offered rate)
    min_top: float = 0.0  # y axis reaches at least this (so 0 % drops is not drawn on +-0.05)

    def plot(self, ax: Axes, series: Sequence[Series], colors: dict[str, str]) -> bool:
        return plot_metric(
            ax,
            series,
            colors,
            self.getter,
            self.title,
            self.ylabel,
            allow_log=self.allow_log,
            scale=self.scale,
            offered_line=self.offered_line,
            min_top=self.min_top,
        )


# the original study's four
LINE_FIGURES: dict[str, LineFigure] = {
    "avg_latency": LineFigure(
        "Average latency (k6 http_req_duration avg)", "latency (ms)", lambda m: m.lat_avg
    ),
    "p95_latency": LineFigure("p95 latency (k6 http_req_duration p95)", "latency (ms)", lambda m: m.lat_p95),
    "throughput": LineFigure(
        "Throughput (successful responses / step duration)",
        "throughput (responses/s)",
        lambda m: m.throughput,
        allow_log=False,
        offered_line=True,
    ),
    "drop_rate": LineFigure(
        "Drop rate (dropped / attempted iterations)",
        "dropped (% of attempted)",
        lambda m: m.drop_rate,
        scale=100.0,
        allow_log=False,
        min_top=5.0,
    ),
    # beyond the study: failed requests (e.g. pika_shared's broken connection under threads)
    "error_rate": LineFigure(
        "Error rate (failed / completed requests)",
        "failed (% of requests)",
        lambda m: m.error_rate,
        scale=100.0,
        allow_log=False,
        min_top=5.0,
    ),
}
# the overview grid's first four panels
ORIGINAL_FOUR = ("avg_latency", "p95_latency", "throughput", "drop_rate")


def _stamp(fig, subtitle: str | None) -> None:
    if subtitle:
        fig.text(0.995, 0.005, subtitle, ha="right", va="bottom", fontsize="x-small", color="0.45")


def write_charts(
    series: Sequence[Series], out_dir: Path, subtitle: str | None = None, dpi: int = 110
) -> tuple[list[Path], list[str]]:
    """Write one PNG per figure plus overview.png. Returns (files written, notes on figures skipped)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    colors = series_colors(series)
    written: list[Path] = []
    notes: list[str] = []

    for name, spec in LINE_FIGURES.items():
        fig, ax = plt.subplots(figsize=(8, 5))
        ok = spec.plot(ax, series, colors)
        _save(fig, out_dir / f"{name}.png", subtitle, dpi, ok, written, notes, spec.title)

    fig, ax = plt.subplots(figsize=(8, 5))
    ok = plot_completion(ax, series, colors)
    _save(fig, out_dir / "completion_latency.png", subtitle, dpi, ok, written, notes, "completion latency")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5))
    ok = plot_backlog(ax1, ax2, series, colors)
    _save(fig, out_dir / "backlog.png", subtitle, dpi, ok, written, notes, "backlog")

    fig, axes = plt.subplots(2, 3, figsize=(18, 10))
    flat = axes.ravel()
    any_ok = False
    for ax, name in zip(flat[:4], ORIGINAL_FOUR, strict=True):
        spec = LINE_FIGURES[name]
        any_ok |= spec.plot(ax, series, colors)
    any_ok |= plot_completion(flat[4], series, colors)
    any_ok |= plot_backlog_peak(flat[5], series, colors)
    for ax in flat:  # in the grid, legends go inside the axes (outside ones squeeze the panels)
        leg = ax.get_legend()
        if leg is not None:
            ax.legend(handles=leg.legend_handles, fontsize="x-small", loc="best")
    if subtitle:
        fig.suptitle(subtitle, fontsize="medium")
    _save(fig, out_dir / "overview.png", None, dpi, any_ok, written, notes, "overview")
    return written, notes


def _save(fig, path: Path, subtitle, dpi, ok, written, notes, what) -> None:
    if ok:
        _stamp(fig, subtitle)
        fig.tight_layout()
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        written.append(path)
    else:
        notes.append(f"{path.name} not written: no data for {what} in this run")
        if path.exists():
            path.unlink()
    plt.close(fig)
