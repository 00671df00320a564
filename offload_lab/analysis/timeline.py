"""One step second by second (docs/result-format.md, "Per-second evidence"): a small figure of
five panels on one shared time axis (seconds since the step's t0):

1. offered rate (configured, over the load window) and attempted (started + dropped) against
   achieved (ok responses) and failed responses per second;
2. client latency p50/p95/p99 of the requests ending in each second;
3. dropped iterations per second;
4. the queue: ready (backlog) and unacked (delivered, being worked) messages, and (dashed) the
   retries waiting in each delay queue when the step sampled them;
5. CPU % of each host, and (dashed) the share of each second some task of the host waited for
   a CPU.

Load start and end are marked on every panel. A panel without data says "no data". Inputs come
from the parsed step JSON plus the run folder (offload_lab/analysis/timeline_inputs.py), so this works on any
step file whether or not offload_lab.analysis.load.LoadedStep knows the newer fields. Agg backend only.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from .charts import whole_number_ticks  # noqa: E402
from .samples import PerSecond  # noqa: E402
from .timeline_inputs import TimelineInputs, step_json, timeline_inputs  # noqa: E402

LOG_RATIO = 20.0  # latency panel on a log scale when the values span more than this
FIGSIZE = (9, 10)
DPI = 80
PANELS = 5
PNG_COLORS = 64  # palette PNG: a third of the size of full colour, and looks the same
MARKERS_UP_TO = 40  # points per line; more and the markers only add ink
COUNT_MIN_TOP = 5.0  # a count axis reaches at least this: 0..5 in whole numbers when nothing happened
HOST_ORDER = ("gateway", "core", "broker", "loadgen")
HOST_COLORS = {"gateway": "tab:blue", "core": "tab:green", "broker": "tab:orange", "loadgen": "tab:purple"}
OTHER_COLORS = ["tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray"]


# --------------------------------------------------------------------------------------------
# drawing


OFF_TEXT = {
    "samples": "not recorded: per-request samples off (the step's instruments)",
    "hosts": "not recorded: host sampling off (the step's instruments)",
}


def _missing(ax: Axes, title: str, inputs: TimelineInputs, part: str) -> None:
    """An empty panel: why, when the step's instruments left its data out on purpose."""
    _no_data(ax, title, OFF_TEXT[part] if part in inputs.switched_off else "no data")


def _no_data(ax: Axes, title: str, text: str = "no data") -> None:
    ax.set_title(title, fontsize="medium", loc="left")
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_yticks([])


MARKS = (  # (label, line style): vertical lines on every panel
    ("load start", {"color": "0.3", "linewidth": 1.0}),
    ("arrivals end", {"color": "0.3", "linewidth": 0.8, "linestyle": ":"}),
    ("k6 ended", {"color": "0.3", "linewidth": 1.0, "linestyle": "--"}),
)


def _mark_times(inputs: TimelineInputs) -> list[float | None]:
    start = inputs.load_start_s
    arrivals_end = start + inputs.duration_s if start is not None and inputs.duration_s else None
    return [start, arrivals_end, inputs.load_end_s]


def _marks(ax: Axes, inputs: TimelineInputs) -> None:
    for x, (_, style) in zip(_mark_times(inputs), MARKS, strict=True):
        if x is not None:
            ax.axvline(x, **style)


def _mark_legend(fig: Figure, inputs: TimelineInputs) -> None:
    """One legend for the vertical lines, top right of the figure."""
    handles = [
        Line2D([], [], label=label, **style)
        for x, (label, style) in zip(_mark_times(inputs), MARKS, strict=True)
        if x is not None
    ]
    if handles:
        fig.legend(
            handles=handles, loc="upper right", bbox_to_anchor=(0.995, 0.995), ncol=3, fontsize="small"
        )


def _style(ax: Axes, title: str, ylabel: str) -> None:
    ax.set_title(title, fontsize="medium", loc="left")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        # outside on the right: never over the data; tight_layout keeps every panel equally wide
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0)


def _edges(s: PerSecond) -> np.ndarray:
    return np.arange(len(s) + 1, dtype=np.float64)


def _panel_rates(ax: Axes, inputs: TimelineInputs) -> bool:
    title = "Requests per second: offered vs achieved"
    s = inputs.seconds
    if s is None or len(s) == 0:
        _missing(ax, title, inputs, "samples")
        _marks(ax, inputs)
        return False
    edges = _edges(s)
    if inputs.rate and inputs.load_start_s is not None and inputs.duration_s:
        a, b = inputs.load_start_s, inputs.load_start_s + inputs.duration_s
        ax.plot([a, a, b, b], [0, inputs.rate, inputs.rate, 0], color="0.5", linewidth=1.2, label="offered")
    ax.stairs(s.attempted, edges, color="tab:gray", linestyle="--", linewidth=1, label="attempted")
    ax.stairs(s.ok, edges, color="tab:blue", linewidth=1.4, label="achieved (ok)")
    if s.failed.any():
        ax.stairs(s.failed, edges, color="tab:red", linewidth=1.2, label="failed")
    _marks(ax, inputs)
    _style(ax, title, "per second")
    ax.set_ylim(bottom=0)
    whole_number_ticks(ax)
    return True


def _panel_latency(ax: Axes, inputs: TimelineInputs) -> bool:
    title = "Client latency of the requests ending in each second"
    s = inputs.seconds
    values = np.concatenate([s.p50, s.p95, s.p99]) if s is not None else np.array([])
    values = values[np.isfinite(values)]
    if values.size == 0:
        _missing(ax, title, inputs, "samples")
        _marks(ax, inputs)
        return False
    mid = s.t + 0.5
    marker = "." if len(s) <= MARKERS_UP_TO else None
    for name, arr, color in (
        ("p50", s.p50, "tab:blue"),
        ("p95", s.p95, "tab:orange"),
        ("p99", s.p99, "tab:red"),
    ):
        ax.plot(mid, arr, color=color, linewidth=1, marker=marker, markersize=3, label=name)
    positive = values[values > 0]
    logy = positive.size >= 2 and positive.max() / positive.min() > LOG_RATIO
    _marks(ax, inputs)
    if logy:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.10g}"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        title += " (log scale)"
    _style(ax, title, "ms")
    return True


def _panel_dropped(ax: Axes, inputs: TimelineInputs) -> bool:
    title = "Dropped iterations per second (no free VU)"
    s = inputs.seconds
    if s is None or len(s) == 0:
        _missing(ax, title, inputs, "samples")
        _marks(ax, inputs)
        return False
    ax.stairs(s.dropped, _edges(s), color="tab:red", fill=True, alpha=0.5)
    vus = s.vus[np.isfinite(s.vus)]
    if vus.size:
        title += f"; k6 VUs peaked at {vus.max():g}"
    _marks(ax, inputs)
    _style(ax, title, "per second")
    ax.set_ylim(bottom=0, top=max(COUNT_MIN_TOP, float(s.dropped.max()) * 1.1))
    whole_number_ticks(ax)
    return True


DELAY_COLORS = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def _panel_queue(ax: Axes, inputs: TimelineInputs) -> bool:
    title = "Queue: ready (backlog) and unacked (being worked)"
    q = inputs.queue
    if inputs.delay_queues:
        title += "; dashed: retries in each delay queue"
    if q is None:
        _no_data(ax, title)
        _marks(ax, inputs)
        return False
    marker = "." if len(q) <= MARKERS_UP_TO else None
    ax.plot(q[:, 0], q[:, 1], color="tab:orange", linewidth=1.2, marker=marker, markersize=3, label="ready")
    if np.isfinite(q[:, 2]).any():
        ax.plot(
            q[:, 0], q[:, 2], color="tab:green", linewidth=1.2, marker=marker, markersize=3, label="unacked"
        )
    top = float(np.nanmax(q[:, 1:])) if np.isfinite(q[:, 1:]).any() else 0.0
    for (name, d), color in zip(inputs.delay_queues.items(), DELAY_COLORS * 4, strict=False):
        ax.plot(d[:, 0], d[:, 1], color=color, linewidth=1.0, linestyle="--", label=name)
        top = max(top, float(d[:, 1].max()))
    _marks(ax, inputs)
    _style(ax, title, "messages")
    ax.set_ylim(bottom=0, top=max(COUNT_MIN_TOP, top * 1.1))
    whole_number_ticks(ax)
    return True


def _panel_cpu(ax: Axes, inputs: TimelineInputs) -> bool:
    title = "CPU of each host (% of its own CPUs); dashed: % of the time it waited for a CPU"
    if not inputs.hosts:
        _missing(ax, title, inputs, "hosts")
        _marks(ax, inputs)
        return False
    names = [h for h in HOST_ORDER if h in inputs.hosts] + sorted(
        h for h in inputs.hosts if h not in HOST_ORDER
    )
    others = iter(OTHER_COLORS * 4)
    for host in names:
        t, pct = inputs.hosts[host]
        color = HOST_COLORS.get(host) or next(others)
        ax.plot(t, pct, color=color, linewidth=1.2, label=host)
        if host in inputs.cpu_waits:
            t_wait, waited = inputs.cpu_waits[host]
            ax.plot(t_wait, waited, color=color, linewidth=0.9, linestyle="--")
    _marks(ax, inputs)
    _style(ax, title, "CPU %")
    top = max(float(np.nanmax(p)) for _, p in inputs.hosts.values())
    ax.set_ylim(bottom=0, top=max(100.0, top * 1.05))
    return True


def _x_end(inputs: TimelineInputs) -> float:
    ends = [1.0]
    if inputs.seconds is not None:
        ends.append(float(len(inputs.seconds)))
    if inputs.queue is not None:
        ends.append(float(inputs.queue[:, 0].max()))
    ends += [float(d[:, 0].max()) for d in inputs.delay_queues.values()]
    ends += [float(t.max()) for t, _ in inputs.hosts.values()]
    ends += [x for x in (inputs.load_end_s, inputs.load_start_s) if x is not None]
    return max(ends)


def build_timeline_figure(inputs: TimelineInputs, title: str) -> Figure | None:
    """The five-panel figure (caller closes it), or None when there is nothing to plot."""
    if not inputs.has_data:
        return None
    fig, axes = plt.subplots(PANELS, 1, sharex=True, figsize=FIGSIZE, dpi=DPI)
    for panel, ax in zip(
        (_panel_rates, _panel_latency, _panel_dropped, _panel_queue, _panel_cpu), axes, strict=True
    ):
        panel(ax, inputs)
    axes[-1].set_xlim(0, _x_end(inputs) * 1.02)
    axes[-1].set_xlabel("seconds since step start (t0)")
    fig.suptitle(title, fontsize="medium", x=0.01, y=0.99, ha="left", va="top")
    _mark_legend(fig, inputs)
    fig.align_ylabels(axes)
    fig.tight_layout(rect=(0, 0, 1, 0.975))
    return fig


def plot_timeline(step_json: dict[str, Any], run_dir: str | Path, out_path: str | Path, title: str) -> bool:
    """Write the timeline PNG of a parsed step file; False (nothing written) if nothing to plot."""
    fig = build_timeline_figure(timeline_inputs(step_json, run_dir), title)
    if fig is None:
        return False
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        save_small_png(fig, out_path)
    finally:
        plt.close(fig)
    return True


def save_small_png(fig: Figure, path: Path) -> None:
    """PNG with a 64-colour palette (about 30 KB instead of about 100 KB for a long step)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    try:
        from PIL import Image  # matplotlib depends on Pillow

        buf.seek(0)
        with Image.open(buf) as image:
            small = image.convert("RGB").quantize(colors=PNG_COLORS, dither=Image.Dither.NONE)
            small.save(path, format="PNG", optimize=True)
    except (ImportError, OSError, ValueError, AttributeError):
        path.write_bytes(buf.getvalue())


def plot_step_timeline(step: Any, run_dir: str | Path, out_path: str | Path, title: str) -> bool:
    """Timeline PNG of one step (a load.LoadedStep or the parsed step JSON dict) of the run in
    run_dir; False (nothing written) when the step has nothing to plot."""
    return plot_timeline(step_json(step, run_dir), run_dir, out_path, title)
