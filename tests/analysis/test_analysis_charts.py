"""Chart details a reader relies on: whole-number ticks on count axes (even when every count is
0), percentile markers that stay apart when the values coincide, legends in the series' colours."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from test_analysis_timeline import make_samples, step_data  # noqa: E402

from offload_lab.analysis.charts import PERCENTILE_STYLES, plot_backlog_peak, plot_completion  # noqa: E402
from offload_lab.analysis.load import load_run  # noqa: E402
from offload_lab.analysis.metrics import aggregate_points, run_metrics  # noqa: E402
from offload_lab.analysis.series import build_series, series_colors  # noqa: E402
from offload_lab.analysis.timeline import build_timeline_figure, timeline_inputs  # noqa: E402


def async_series(run_dir: Path, **figures: float):
    run = load_run(run_dir)
    points = [replace(p, **figures) for p in aggregate_points(run_metrics(run.steps)) if p.is_async]
    series = build_series(points)
    return series, series_colors(series)


def visible_ticks(ax) -> list[float]:
    lo, hi = ax.get_ylim()
    return [t for t in ax.get_yticks() if lo <= t <= hi]


def test_an_all_zero_message_axis_has_whole_number_ticks(sweep_run):
    series, colors = async_series(sweep_run, backlog_peak=0.0)
    fig, ax = plt.subplots()
    assert plot_backlog_peak(ax, series, colors)
    fig.canvas.draw()
    ticks = visible_ticks(ax)
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
    plt.close(fig)


def test_timeline_count_panels_have_whole_number_ticks_when_nothing_happened(tmp_path):
    (tmp_path / "samples").mkdir()
    make_samples(tmp_path / "samples" / "01-async-20.csv.gz", slow_from=99)  # no drops at all
    data = step_data()
    data["broker"]["samples"] = [[float(t), 0, 0] for t in range(16)]  # an empty queue throughout
    fig = build_timeline_figure(timeline_inputs(data, tmp_path), "quiet step")
    axes = fig.axes
    fig.canvas.draw()
    dropped, queue = axes[2], axes[3]
    assert "Dropped" in dropped.get_title(loc="left") and "Queue" in queue.get_title(loc="left")
    for ax in (dropped, queue):
        ticks = visible_ticks(ax)
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), (
            ax.get_title(loc="left"),
            ticks,
        )
    plt.close(fig)


def test_coinciding_percentiles_stay_distinguishable_and_the_legend_has_the_series_colour(sweep_run):
    series, colors = async_series(sweep_run, comp_p50=1000.0, comp_p95=1000.0, comp_p99=1000.0)
    fig, ax = plt.subplots()
    assert plot_completion(ax, series, colors)
    color = colors[series[0].name]
    drawn = [line for line in ax.get_lines() if line.get_marker() not in ("None", None, "")]
    styles = {
        (line.get_marker(), line.get_markersize(), line.get_markerfacecolor() == "none") for line in drawn
    }
    assert len(styles) == 3  # p50, p95, p99: each its own shape, size and fill
    assert len({size for _, size, _ in styles}) == 3
    assert any(hollow for *_, hollow in styles)  # an outline lets the marker under it show
    # the marker drawn last (on top) is the smallest one
    assert drawn[-1].get_markersize() == min(s["markersize"] for s in PERCENTILE_STYLES.values())
    legend = ax.get_legend()
    for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True):
        assert mcolors.same_color(handle.get_color(), color), text.get_text()
        if text.get_text() in PERCENTILE_STYLES:
            assert mcolors.same_color(handle.get_markeredgecolor(), color)
            assert handle.get_marker() == PERCENTILE_STYLES[text.get_text()]["marker"]
    plt.close(fig)
