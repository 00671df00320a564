"""Repeated runs: each point's median with its min-max range in tables, charts and the CSV,
flags that a median must not hide, and comparisons of repeated runs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from analysis_testlib import current_step, read_csv

from offload_lab.analysis.load import load_run
from offload_lab.analysis.metrics import aggregate_points, run_metrics
from offload_lab.analysis.report import compare_runs, make_report

P95 = {1: 2.0, 2: 3.0, 3: 9.0}  # per repeat, for the async step at 30/s


def make_repeated_run(src: Path, dest: Path, repeats: int = 3, dropped_in: int | None = None) -> Path:
    """The fixture sweep run three times, interleaved, with the async p95 at 30/s varied per repeat."""
    run = json.loads((src / "run.json").read_text())
    originals = [current_step(src / "steps" / name) for name in run["steps"]]
    (dest / "steps").mkdir(parents=True)
    names = []
    index = 0
    for repeat in range(1, repeats + 1):
        for data in originals:
            index += 1
            data = copy.deepcopy(data)
            st = data["step"]
            st.update(index=index, repeat=repeat, repeats=repeats)
            if st["mode"] == "async" and st["rate"] == 30:
                data["k6"]["metrics"]["http_req_duration"]["values"]["p(95)"] = P95[repeat]
                if repeat == dropped_in:
                    data["k6"]["metrics"]["dropped_iterations"] = {"type": "counter", "values": {"count": 7}}
            name = f"{index:02d}-{st['mode']}-{st['rate']}-r{repeat}.json"
            (dest / "steps" / name).write_text(json.dumps(data))
            names.append(name)
    run.update(steps=names, run_id=dest.name)
    run["spec"]["repeat"] = repeats
    (dest / "run.json").write_text(json.dumps(run))
    return dest


@pytest.fixture
def repeated(sweep_run: Path, tmp_path: Path) -> Path:
    return make_repeated_run(sweep_run, tmp_path / "20261127-000000-rep")


def test_points_are_medians_with_their_range(repeated):
    run = load_run(repeated)
    assert not [w for w in run.warnings if "appears in" in w]  # repeats are not duplicates
    points = aggregate_points(run_metrics(run.steps, run.path))
    assert len(points) == 4
    p = next(p for p in points if p.mode == "async" and p.rate == 30)
    assert p.n == 3 and [r.repeat for r in p.repeats] == [1, 2, 3]
    assert p.lat_p95 == 3.0 and p.spread("lat_p95") == (2.0, 9.0)
    single = run_metrics(run.steps[:1])[0]
    assert single.n == 1 and single.spread("lat_p95") is None


def test_a_flag_on_one_repeat_stays_on_the_point(sweep_run, tmp_path):
    path = make_repeated_run(sweep_run, tmp_path / "20261127-000000-flag", dropped_in=2)
    run = load_run(path)
    p = next(p for p in aggregate_points(run_metrics(run.steps)) if p.mode == "async" and p.rate == 30)
    assert p.dropped == 0  # the median hides the drops ...
    assert p.loadgen_flag == "drops below VU cap" and p.flagged_repeats == 1  # ... the flag does not
    report = make_report(path, charts=False)
    text = report.summary_md.read_text()
    assert "⚠ drops below VU cap in 1 of 3 repeats" in text
    assert "r2 (" in text  # the note names the repeat


def test_tables_and_csv_show_medians_ranges_and_every_repeat(repeated):
    report = make_report(repeated)
    md = report.summary_md.read_text()
    assert "3.00 [2.00-9.00]" in md  # p95 median [min-max]
    assert "median of 3 repeats" in md
    rows = read_csv(report.summary_csv)
    rows_30 = [r for r in rows if r["mode"] == "async" and r["rate"] == "30"]
    assert [r["row"] for r in rows_30] == ["step", "step", "step", "median", "min", "max"]
    assert [r["repeat"] for r in rows_30[:3]] == ["1", "2", "3"]
    by_kind = {r["row"]: r for r in rows_30}
    assert (by_kind["median"]["latency_p95_ms"], by_kind["min"]["latency_p95_ms"]) == ("3", "2")
    assert by_kind["max"]["latency_p95_ms"] == "9"
    assert len([r for r in rows if r["row"] == "step"]) == 12
    assert (report.out_dir / "p95_latency.png").stat().st_size > 10_000


def test_compare_works_on_repeated_runs(repeated, sweep_run):
    result = compare_runs(repeated, sweep_run, labels=["three", "one"])
    md = result.summary_md.read_text()
    assert "three: async" in md and "one: async" in md
    assert "3.00 [2.00-9.00]" in md
    assert result.html is not None and result.html.is_file()
