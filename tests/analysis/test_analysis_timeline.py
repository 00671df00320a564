"""offload_lab.analysis.timeline: the per-step figure (five panels, one time axis) from a hand-made step file
and samples file, with and without its parts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import analysis_testlib  # noqa: F401  (puts the repository on sys.path)
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import pytest
from record_testlib import step_file

from offload_lab.analysis.load import loaded_step
from offload_lab.analysis.timeline import (
    PANELS,
    build_timeline_figure,
    plot_step_timeline,
    plot_timeline,
    timeline_inputs,
)
from offload_lab.records import StepRecord

T0 = 1796290000.0
HEADER = "metric_name,timestamp,metric_value,expected_response,status"
MAX_PNG_BYTES = 80_000


def make_samples(path: Path, rate: int = 20, seconds: int = 10, slow_from: int = 6) -> None:
    """`rate` requests a second from t0 + 1 s; latency jumps 100x at `slow_from`, a few fail,
    some drops."""
    lines = [HEADER]
    for sec in range(seconds):
        lines.append(f"vus,{int((T0 + 1 + sec) * 1000)},{5 + sec},,")
        for i in range(rate):
            start = T0 + 1 + sec + i / rate
            dur_ms = 5.0 + i if sec < slow_from else 800.0 + 10 * i
            end_ms = int(start * 1000 + dur_ms)
            ok = i % 10 != 9
            lines.append(
                f"http_req_duration,{end_ms},{dur_ms:.6f},{'true' if ok else 'false'},{202 if ok else 503}"
            )
        if sec >= slow_from:
            lines += [f"dropped_iterations,{int((T0 + 1.5 + sec) * 1000)},1,,"] * 3
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


def step_data() -> dict:
    return step_file(
        {"index": 1, "mode": "async", "rate": 20, "duration_s": 10, "max_vus": 20},
        clock={"t0_unix_s": T0, "load_started_unix_s": T0 + 0.9, "load_ended_unix_s": T0 + 12.5},
        samples={"file": "samples/01-async-20.csv.gz", "rows": 0},
        broker={
            "queue": "tasks",
            "samples": [[float(t), min(t * 3, 40), max(0, t * 3 - 20)] for t in range(0, 16)],
            "load_end_s": 12.5,
        },
        hosts_timeline={
            "interval_s": 1.0,
            "samples": [
                [
                    float(t),
                    {
                        "broker": 3.0,
                        "gateway": 10.0 * (t % 5),
                        "core": 50.0,
                        "loadgen": None if t == 3 else 20.0,
                    },
                ]
                for t in range(1, 16)
            ],
        },
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    (d / "samples").mkdir(parents=True)
    (d / "steps").mkdir()
    make_samples(d / "samples" / "01-async-20.csv.gz")
    (d / "steps" / "01-async-20.json").write_text(json.dumps(step_data()))
    return d


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_inputs(run_dir):
    inputs = timeline_inputs(step_data(), run_dir)
    assert inputs.notes == []
    assert inputs.load_start_s == pytest.approx(0.9) and inputs.load_end_s == pytest.approx(12.5)
    s = inputs.seconds
    assert s is not None and len(s) >= 11
    assert s.ok[2:6].tolist() == [18, 18, 18, 18]  # 20 a second, 2 of them fail
    assert s.failed[2:6].tolist() == [2, 2, 2, 2]
    assert s.dropped[7:11].tolist() == [3, 3, 3, 3]
    assert s.offered[2:10].tolist() == pytest.approx([20] * 8)
    assert inputs.queue.shape == (16, 3)
    assert inputs.queue[10].tolist() == [10, 10, 20]  # [t, ready, unacked = messages 30 - ready 10]
    assert set(inputs.hosts) == {"broker", "gateway", "core", "loadgen"}


def test_figure_has_five_panels_on_one_axis(run_dir):
    fig = build_timeline_figure(timeline_inputs(step_data(), run_dir), "01 async 20/s")
    try:
        assert len(fig.axes) == PANELS == 5
        first = fig.axes[0]
        assert all(first.get_shared_x_axes().joined(first, ax) for ax in fig.axes[1:])
        assert not any("no data" in texts(ax) for ax in fig.axes)
        assert fig.axes[1].get_yscale() == "log"  # 5 ms -> 990 ms
        for ax in fig.axes:  # load start, arrivals end, k6 ended on every panel
            xs = sorted(round(line.get_xdata()[0], 3) for line in ax.lines if len(set(line.get_xdata())) == 1)
            assert {0.9, 10.9, 12.5} <= set(xs)
        assert fig.axes[0].get_xlim()[1] >= 15
    finally:
        plt.close(fig)


def test_png_is_small(run_dir, tmp_path):
    out = tmp_path / "report" / "timeline" / "01-async-20.png"
    assert plot_step_timeline(step_data(), run_dir, out, "01 async 20/s") is True
    assert 0 < out.stat().st_size < MAX_PNG_BYTES
    image = mpimg.imread(out)
    assert image.shape[0] == 800 and image.shape[1] == 720  # 9 x 10 inches at 80 dpi


def test_long_busy_step_png_is_small(tmp_path):
    d = tmp_path / "run"
    (d / "samples").mkdir(parents=True)
    make_samples(d / "samples" / "01-async-20.csv.gz", rate=200, seconds=60, slow_from=30)
    data = step_data()
    data["step"]["duration_s"] = 60
    data["clock"]["load_ended_unix_s"] = T0 + 65
    data["broker"]["samples"] = [[t * 0.5, (t * 7) % 300, (t * 3) % 120] for t in range(0, 200)]
    data["hosts_timeline"]["samples"] = [
        [float(t), {"broker": 3.0 + t % 7, "gateway": 10.0 * (t % 9), "core": 50.0 + t % 13, "loadgen": 20.0}]
        for t in range(1, 100)
    ]
    out = tmp_path / "t.png"
    assert plot_timeline(data, d, out, "01 async 200/s")
    assert out.stat().st_size < MAX_PNG_BYTES


def test_missing_parts_say_no_data(run_dir):
    data = step_data()
    del data["samples"]
    del data["hosts_timeline"]
    inputs = timeline_inputs(data, run_dir)
    assert "no per-request samples kept for this step" in inputs.notes
    fig = build_timeline_figure(inputs, "t")
    try:
        assert len(fig.axes) == 5
        assert ["no data" in texts(ax) for ax in fig.axes] == [True, True, True, False, True]
    finally:
        plt.close(fig)


def test_panels_left_out_by_the_instruments_say_so(run_dir):
    data = step_data()
    data["samples"], data["hosts_timeline"] = None, None
    data["step"]["instruments"] = {
        "ledger": "off",
        "samples": False,
        "host_sampling_s": 0,
        "queue_sampling_s": 1,
    }
    fig = build_timeline_figure(timeline_inputs(data, run_dir), "t")
    try:
        said = [" ".join(texts(ax)) for ax in fig.axes]
        assert ["per-request samples off" in t for t in said] == [True, True, True, False, False]
        assert "host sampling off" in said[4] and "no data" not in said[4]
    finally:
        plt.close(fig)


def test_missing_or_broken_samples_file(run_dir, tmp_path):
    data = step_data()
    data["samples"]["file"] = "samples/nope.csv.gz"
    inputs = timeline_inputs(data, run_dir)
    assert inputs.seconds is None and any("samples/nope.csv.gz" in n for n in inputs.notes)
    (run_dir / "samples" / "bad.csv.gz").write_text("not gzip")
    data["samples"]["file"] = "samples/bad.csv.gz"
    inputs = timeline_inputs(data, run_dir)
    assert inputs.seconds is None and any("bad.csv.gz" in n for n in inputs.notes)
    assert plot_timeline(data, run_dir, tmp_path / "t.png", "t")  # queue and CPU still there


def test_only_samples_and_no_clock(run_dir, tmp_path):
    data = {"step": {"rate": 20, "duration_s": 10}, "samples": step_data()["samples"]}
    inputs = timeline_inputs(data, run_dir)
    assert inputs.seconds is not None and inputs.load_start_s == 0.0
    assert any("no clock" in n for n in inputs.notes)
    fig = build_timeline_figure(inputs, "t")
    try:
        assert ["no data" in texts(ax) for ax in fig.axes] == [False, False, False, True, True]
    finally:
        plt.close(fig)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"step": {"rate": 5}},
        {"broker": {"samples": []}, "hosts_timeline": {"samples": [[1.0, {"core": None}]]}},
    ],
)
def test_nothing_to_plot(tmp_path, data):
    out = tmp_path / "t.png"
    assert plot_timeline(data, tmp_path, out, "t") is False
    assert not out.exists()
    assert build_timeline_figure(timeline_inputs(data, tmp_path), "t") is None


def test_garbage_in_the_step_file_is_skipped(run_dir, tmp_path):
    data = step_data()
    data["broker"]["samples"] = [[0, 1, 0], "x", [None, 3, 1], [2.0, 5], [3.0, 6, 2]]
    data["hosts_timeline"]["samples"] = [[1.0, "x"], ["t", {}], [2.0, {"core": "high"}], [3.0, {"core": 40}]]
    data["clock"] = {"t0_unix_s": "yesterday"}
    inputs = timeline_inputs(data, run_dir)
    assert inputs.queue[:, 0].tolist() == [0, 2, 3]
    assert list(inputs.hosts) == ["core"]
    assert plot_timeline(data, run_dir, tmp_path / "t.png", "t")


def test_from_a_loaded_step(run_dir, tmp_path):
    """An offload_lab.analysis.load.LoadedStep (the step file is re-read for what the LoadedStep
    does not keep)."""
    step = loaded_step(StepRecord.from_dict(step_data()), "steps/01-async-20.json", [])
    out = tmp_path / "a.png"
    assert plot_step_timeline(step, run_dir, out, "from LoadedStep")
    assert out.stat().st_size > 0
    # an object with only the file name works as well
    assert plot_step_timeline(
        SimpleNamespace(file="steps/01-async-20.json"), run_dir, tmp_path / "b.png", "t"
    )
    # and one whose file is gone, but which carries the fields itself
    bare = SimpleNamespace(
        file="steps/gone.json",
        rate=20,
        duration_s=10,
        clock=step_data()["clock"],
        samples_file="samples/01-async-20.csv.gz",
        hosts_timeline=None,
        broker=None,
    )
    inputs_png = tmp_path / "c.png"
    assert plot_step_timeline(bare, run_dir, inputs_png, "t")


def test_cpu_waiting_is_drawn_dashed_in_each_hosts_colour(run_dir):
    data = step_data()
    data["hosts_timeline"]["cpu_wait_samples"] = [
        [float(t), {"broker": 20.0 + t, "gateway": 5.0}] for t in range(1, 16)
    ]
    inputs = timeline_inputs(data, run_dir)
    assert set(inputs.cpu_waits) == {"broker", "gateway"}
    assert inputs.cpu_waits["broker"][1][:3].tolist() == [21.0, 22.0, 23.0]
    assert timeline_inputs(step_data(), run_dir).cpu_waits == {}  # steps from before have none
    fig = build_timeline_figure(inputs, "01 async 20/s")
    try:
        cpu = fig.axes[4]
        solid = {
            line.get_label(): line
            for line in cpu.lines
            if line.get_linestyle() == "-" and line.get_label() in inputs.hosts
        }
        dashed = [
            line for line in cpu.lines if line.get_linestyle() == "--" and len(set(line.get_xdata())) > 1
        ]
        assert len(dashed) == 2
        assert {line.get_color() for line in dashed} == {
            solid["broker"].get_color(),
            solid["gateway"].get_color(),
        }
        assert sorted(line.get_ydata()[0] for line in dashed) == [5.0, 21.0]
    finally:
        plt.close(fig)
