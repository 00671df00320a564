"""--compare: short run labels, the change from A to B per point, warnings when the runs differ in
more than the compared setting or are one run, and charts that tell the runs apart."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from analysis_testlib import read_csv, read_json, run_cli  # noqa: E402

from offload_lab.analysis.charts import plot_metric  # noqa: E402
from offload_lab.analysis.compare import change_texts, run_labels  # noqa: E402
from offload_lab.analysis.fmt import fmt_num  # noqa: E402
from offload_lab.analysis.load import load_run  # noqa: E402
from offload_lab.analysis.metrics import aggregate_points, run_metrics  # noqa: E402
from offload_lab.analysis.report import compare_runs  # noqa: E402
from offload_lab.analysis.series import RUN_STYLES, build_series, give_runs_colors, series_colors  # noqa: E402


def variant(run: Path, dest: Path, run_id: str, **gateway: str) -> Path:
    """A copy of `run` as another run of the same spec, with other provisioned gateway settings."""
    shutil.copytree(run, dest)
    meta = read_json(dest / "run.json")
    meta["run_id"] = run_id
    meta["started_at"] = f"2026-11-28T{run_id[9:11]}:{run_id[11:13]}:00Z"
    meta["settings"]["gateway"].update(gateway)
    (dest / "run.json").write_text(json.dumps(meta))
    return dest


def set_p95(run: Path, step: str, value: float) -> None:
    path = run / "steps" / step
    data = read_json(path)
    data["k6"]["metrics"]["http_req_duration"]["values"]["p(95)"] = value
    path.write_text(json.dumps(data))


def table(md: str, title: str) -> list[list[str]]:
    """The rows of a markdown table under `## <title>`, header first, as cells."""
    block = md.split(f"## {title}\n")[1].strip("\n").split("\n\n")[0]
    lines = [line for line in block.splitlines() if line.startswith("|") and not line.startswith("|---")]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]


def header_lines(md: str) -> list[str]:
    """The header line of every markdown table (the line above its |---| line)."""
    lines = md.splitlines()
    return [lines[i - 1] for i, line in enumerate(lines) if line.startswith("|---")]


def test_labels_name_the_setting_that_differs_and_the_change_is_shown(sweep_run, tmp_path):
    b = variant(sweep_run, tmp_path / "b", "20261128-090000-fixture-sweep", PUBLISHER="pika_shared")
    a_p95 = read_json(sweep_run / "steps" / "04-async-30.json")["k6"]["metrics"]["http_req_duration"]
    set_p95(b, "04-async-30.json", a_p95["values"]["p(95)"] * 1.5)
    out = tmp_path / "cmp"
    res = run_cli("--compare", sweep_run, b, "--out", out)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # one setting differs: it is the compared one, nothing to warn about
    label_a, label_b = "fixture-sweep [PUBLISHER=kombu_pool]", "fixture-sweep [PUBLISHER=pika_shared]"
    rows = read_csv(out / "summary.csv")
    assert {r["series"] for r in rows} == {
        f"{label_a}: sync",
        f"{label_a}: async",
        f"{label_b}: sync",
        f"{label_b}: async",
    }

    md = (out / "summary.md").read_text()
    run_ids = [read_json(sweep_run / "run.json")["run_id"], "20261128-090000-fixture-sweep"]
    top = md.split("## ")[0]
    for run_id in run_ids:
        assert top.count(run_id) == 1  # the run ids once, at the top ...
        assert not [h for h in header_lines(md) if run_id in h]  # ... and in no table header

    p95 = table(md, "Change from A to B: p95 latency (ms)")
    assert p95[0] == ["rate (req/s)", "series", f"A: {label_a}", f"B: {label_b}", "B - A", "(B - A) / A"]
    row = next(r for r in p95 if r[:2] == ["30", "async"])
    assert row[5] == "+50.0%"
    assert float(row[4].lstrip("+").replace(",", "")) == pytest.approx(
        a_p95["values"]["p(95)"] * 0.5, abs=0.01
    )
    assert next(r for r in p95 if r[:2] == ["10", "sync"])[4:] == ["0", "0.0%"]
    # drop rate: 0 in both runs at 10/s is no change, not a division by zero
    drops = table(md, "Change from A to B: drop rate (%)")
    assert next(r for r in drops if r[:2] == ["10", "async"])[4:] == ["0 pp", "0.0%"]
    assert "Change from A to B: p95 latency (ms)" in (out / "index.html").read_text()


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (10.0, 15.0, ("+5.0", "+50.0%")),
        (10.0, 5.0, ("-5.0", "-50.0%")),
        (0.0, 0.0, ("0", "0.0%")),
        (0.0, 2.0, ("+2.0", "n/a (A = 0)")),
        (None, 2.0, ("—", "—")),
        (3.0, None, ("—", "—")),
    ],
)
def test_change_texts(a, b, expected):
    assert change_texts(a, b, fmt_num) == expected


def test_runs_differing_in_more_than_one_setting_are_warned_about(sweep_run, tmp_path, capsys):
    b = variant(
        sweep_run,
        tmp_path / "b",
        "20261128-090000-fixture-sweep",
        PUBLISHER="pika_shared",
        GUNICORN_WORKER_CLASS="gthread",
    )
    result = compare_runs(sweep_run, b, tmp_path / "cmp", charts=False)
    warning = next(w for w in result.warnings if "differ in 2 settings" in w)
    assert "gateway.GUNICORN_WORKER_CLASS: gevent vs gthread" in warning
    assert "gateway.PUBLISHER: kombu_pool vs pika_shared" in warning
    md = result.summary_md.read_text()
    assert f"> ⚠ {warning}" in md.split("## ")[0]  # at the top of the comparison
    assert warning in md.split("## Warnings")[1]
    assert run_labels(load_run(sweep_run), load_run(b)) == [
        "fixture-sweep [GUNICORN_WORKER_CLASS=gevent, PUBLISHER=kombu_pool]",
        "fixture-sweep [GUNICORN_WORKER_CLASS=gthread, PUBLISHER=pika_shared]",
    ]
    # the CLI prints it
    from offload_lab.analysis.cli import main

    capsys.readouterr()
    assert (
        main(["--compare", str(sweep_run), str(b), "--out", str(tmp_path / "cli"), "-q", "--no-charts"]) == 0
    )
    assert "differ in 2 settings" in capsys.readouterr().err


def test_a_run_compared_with_itself_is_warned_about(sweep_run, tmp_path):
    res = run_cli("--compare", sweep_run, sweep_run, "--out", tmp_path / "cmp", "--no-charts")
    assert res.returncode == 0, res.stderr
    assert "is compared with itself (one folder)" in res.stderr
    md = (tmp_path / "cmp" / "summary.md").read_text()
    assert "compared with itself" in md.split("## ")[0]
    rows = read_csv(tmp_path / "cmp" / "summary.csv")
    assert {r["series"] for r in rows} == {
        "fixture-sweep (A): sync",
        "fixture-sweep (A): async",
        "fixture-sweep (B): sync",
        "fixture-sweep (B): async",
    }
    changes = table(md, "Change from A to B: avg latency (ms)")
    assert changes[0][2:4] == ["fixture-sweep (A)", "fixture-sweep (B)"]
    assert {tuple(r[4:6]) for r in changes[1:]} == {("0", "0.0%")}


def test_a_copy_of_a_run_is_the_same_run(sweep_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(sweep_run, copy)
    result = compare_runs(sweep_run, copy, tmp_path / "cmp", charts=False)
    assert any("compared with itself (two copies of it)" in w for w in result.warnings)


def test_runs_alike_in_every_setting_are_told_apart_by_their_start(sweep_run, tmp_path):
    b = variant(sweep_run, tmp_path / "b", "20261128-093000-fixture-sweep")
    assert run_labels(load_run(sweep_run), load_run(b)) == [
        "fixture-sweep 2026-11-27 05:16",
        "fixture-sweep 2026-11-28 09:30",
    ]
    assert compare_runs(sweep_run, b, tmp_path / "cmp", charts=False).warnings == []


def test_runs_without_a_common_point_are_warned_about(sweep_run, publishers_run, tmp_path):
    result = compare_runs(sweep_run, publishers_run, tmp_path / "cmp", charts=False)
    assert any("no point (series, mode, rate) is in both runs" in w for w in result.warnings)
    assert any("the specs differ (fixture-sweep vs fixture-publishers)" in w for w in result.warnings)
    assert "Change from A to B" not in result.summary_md.read_text()


def test_each_run_has_its_own_marker_colour_and_legend_entry(sweep_run, tmp_path):
    b = variant(sweep_run, tmp_path / "b", "20261128-090000-fixture-sweep", PUBLISHER="pika_shared")
    per_run = []
    for path, label, style in zip((sweep_run, b), ("A", "B"), RUN_STYLES, strict=True):
        run = load_run(path)
        per_run.append(build_series(aggregate_points(run_metrics(run.steps)), label, style))
    give_runs_colors(*per_run)
    series = per_run[0] + per_run[1]
    colors = series_colors(series)
    assert len(set(colors.values())) == len(series) == 4  # every series its own colour

    fig, ax = plt.subplots()
    assert plot_metric(ax, series, colors, lambda m: m.lat_avg, "avg", "ms")
    lines = {line.get_label(): line for line in ax.get_lines()}
    for s in series:
        line = lines[s.name]
        assert mcolors.same_color(line.get_color(), colors[s.name])
        assert line.get_marker() == s.style.marker
        assert line.get_linestyle() == s.style.linestyle
    assert lines["A: async"].get_marker() != lines["B: async"].get_marker()
    assert lines["B: async"].get_markerfacecolor() == "none"  # hollow: A's point shows through
    assert mcolors.same_color(lines["A: async"].get_markerfacecolor(), colors["A: async"])
    legend = ax.get_legend()
    entries = dict(zip([t.get_text() for t in legend.get_texts()], legend.legend_handles, strict=True))
    assert set(entries) == {s.name for s in series}
    for name, handle in entries.items():  # legend markers in their series' colour and shape
        assert mcolors.same_color(handle.get_markeredgecolor(), colors[name])
        assert handle.get_marker() == lines[name].get_marker()
    plt.close(fig)


def test_compare_charts_are_written(sweep_run, tmp_path):
    b = variant(sweep_run, tmp_path / "b", "20261128-090000-fixture-sweep", PUBLISHER="pika_shared")
    result = compare_runs(sweep_run, b, tmp_path / "cmp")
    assert {p.name for p in result.charts} >= {"p95_latency.png", "completion_latency.png", "overview.png"}
    html = result.html.read_text()
    assert re.search(r"<h1>offload-lab comparison: fixture-sweep \[PUBLISHER=kombu_pool\] vs", html)
