"""The capacity table and chart of a suite run, from subject folders holding what `fab capacity`
writes (CapacityResult.as_dict, run.json): every row's figures come from its subject's files,
the chart's bars are the table's capacities, a stale capacity.json is called out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from record_testlib import AT, run_file

from offload_lab.analysis import capacity_chart
from offload_lab.analysis.capacity_table import build_table, capacity_text, spread_text, table_markdown
from offload_lab.analysis.cli import main
from offload_lab.capacity.probe import Probe, Slo
from offload_lab.capacity.result import CapacityResult
from offload_lab.records import SuiteRecord

SUITE = {
    "name": "t",
    "slo": {"p95_ms": 20, "max_error_pct": 0.1, "dropped": 0},
    "source": "k6/capacity/t.yml",
}
NAMES = ["sync", "noop", "kombu_pool", "unbounded", "loadgen", "nothing", "never_ran"]


def probe(rate, passed, p95=5.0, bottleneck=None, invalid=False):
    reasons = [] if passed else ["p95 40.0 ms over the SLO 20 ms"]
    evidence = [f"{bottleneck} busy"] if bottleneck else []
    return Probe(rate, passed, reasons, evidence, bottleneck, invalid, None, {"p95_ms": p95})


def subject(folder: Path, name, mode, probes, gateway=None, status="complete"):
    d = folder / name
    (d / "steps").mkdir(parents=True)
    spec = {"modes": [mode], "gateway": gateway or {}, "core": {"PREFETCH": "1000"}}
    (d / "run.json").write_text(json.dumps(run_file(run_id=name, spec=spec, status=status)))
    passed = [p.rate for p in probes if p.passed]
    failed = sorted((p for p in probes if not p.passed), key=lambda p: p.rate)
    result = CapacityResult(
        mode, Slo(), probes, max(passed) if passed else None, failed[0] if failed else None, "x"
    )
    (d / "capacity.json").write_text(json.dumps(result.as_dict()))


@pytest.fixture
def suite_dir(tmp_path):
    folder = tmp_path / "suite"
    named_higher = probe(200, False, bottleneck="lab-gateway CPU")  # the first failure names nothing
    subject(
        folder,
        "sync",
        "sync",
        [probe(25, True, 1008.0), probe(50, True, 1014.0), probe(100, False), named_higher],
    )
    subject(folder, "noop", "noop", [probe(400, True, 2.0), probe(800, False, bottleneck="lab-gateway CPU")])
    confirm = {"PUBLISHER": "kombu_pool", "PUBLISH_CONFIRM": "1", "GUNICORN_WORKER_CLASS": "gevent"}
    subject(
        folder,
        "kombu_pool",
        "async",
        [probe(100, True, 12.5), probe(200, False, bottleneck="CPU 0 (shared)")],
        confirm,
    )
    subject(folder, "unbounded", "async", [probe(1000, True), probe(2000, True)])
    subject(
        folder, "loadgen", "async", [probe(100, True), probe(200, False, bottleneck="loadgen", invalid=True)]
    )
    subject(folder, "nothing", "async", [probe(50, False), probe(25, False)])
    table = build_table(folder, NAMES)
    record = SuiteRecord(suite=SUITE, run_id="suite", started_at=AT, status="complete", **table)
    (folder / "capacity.json").write_text(json.dumps(record.to_dict()))
    (folder / "capacity.md").write_text(table_markdown(SUITE, table))
    return folder


def test_each_row_comes_from_its_subject_folder(suite_dir):
    rows = {r["subject"]: r for r in build_table(suite_dir, NAMES)["subjects"]}
    k = rows["kombu_pool"]
    assert (k["capacity_rps"], k["first_failure_rps"], k["bottleneck"]) == (100, 200, "CPU 0 (shared)")
    assert k["p95_at_capacity_ms"] == 12.5 and k["share_of_noop"] == 0.25  # 100 of the no-op's 400
    assert (
        k["settings"] == "PUBLISHER=kombu_pool PUBLISH_CONFIRM=1 GUNICORN_WORKER_CLASS=gevent PREFETCH=1000"
    )
    assert k["failure_reasons"] == ["p95 40.0 ms over the SLO 20 ms"] and k["evidence"] == [
        "CPU 0 (shared) busy"
    ]
    assert rows["sync"]["p95_at_capacity_ms"] == 1014.0 and rows["noop"]["share_of_noop"] == 1.0
    assert (rows["sync"]["bottleneck"], rows["sync"]["bottleneck_rps"]) == ("lab-gateway CPU", 200)
    assert capacity_text(rows["unbounded"]) == "2,000/s or more (no probe failed)"
    assert capacity_text(rows["loadgen"]) == "INVALID (the load generator limited it)"
    assert rows["loadgen"]["share_of_noop"] is None  # an invalid capacity is no share of anything
    assert capacity_text(rows["nothing"]) == "none (below 25/s)"
    assert capacity_text(rows["never_ran"]) == "not run"


def test_the_markdown_table_links_each_subject(suite_dir):
    md = (suite_dir / "capacity.md").read_text()
    assert "No-op (POST /noop, the gateway without the publish): 400/s" in md
    line = next(x for x in md.splitlines() if x.startswith("| kombu_pool |"))
    assert (
        "| 100/s | unknown (not repeated) | 3 | 25% | 12.5 | 200/s | p95 40.0 ms over the SLO 20 ms "
        "| CPU 0 (shared) |" in line
    )
    assert line.endswith("| 2 | [kombu_pool/](kombu_pool/capacity.md) |")


def test_the_report_draws_each_capacity_from_capacity_json(suite_dir, monkeypatch, capsys):
    drawn = {}
    real_barh = capacity_chart.plt.Axes.barh

    def spy(ax, y, width, *args, **kwargs):
        drawn[y] = (width, kwargs.get("hatch"))
        return real_barh(ax, y, width, *args, **kwargs)

    monkeypatch.setattr(capacity_chart.plt.Axes, "barh", spy)
    assert main([str(suite_dir), "-q"]) == 0
    report = suite_dir / "report"
    assert (report / "capacity.png").stat().st_size > 10_000 and (report / "index.html").is_file()
    rows = json.loads((suite_dir / "capacity.json").read_text())["subjects"]
    y_of = {r["subject"]: len(rows) - 1 - i for i, r in enumerate(rows)}  # the first at the top
    for r in rows:
        if r.get("valid") is False:
            assert drawn[y_of[r["subject"]]] == (r["first_failure_rps"], "//")
        elif r.get("capacity_rps"):
            assert drawn[y_of[r["subject"]]] == (r["capacity_rps"], None)
        else:
            assert y_of[r["subject"]] not in drawn  # nothing passed or not run: no bar
    summary = (report / "summary.md").read_text()
    assert "![capacity per subject](capacity.png)" in summary
    assert "| kombu_pool | async |" in summary and "## Warnings" in summary  # subjects without steps
    # the report lives in report/: its links climb back to each subject's capacity.md
    assert "[kombu_pool/](../kombu_pool/capacity.md)" in summary
    csv_lines = (report / "capacity.csv").read_text().splitlines()
    assert csv_lines[0].startswith("subject,mode,settings,status,capacity_rps,valid")
    assert any(line.startswith("kombu_pool,async,") and ",100,True," in line for line in csv_lines)


def test_a_bottleneck_named_at_a_higher_rate_says_so(suite_dir):
    md = (suite_dir / "capacity.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("| sync |"))
    assert (
        "| 100/s | p95 40.0 ms over the SLO 20 ms | lab-gateway CPU (at 200/s) | lab-gateway CPU busy |"
        in line
    )


def test_a_stale_capacity_json_is_called_out(suite_dir):
    data = json.loads((suite_dir / "capacity.json").read_text())
    data["subjects"][2]["capacity_rps"] = 999
    (suite_dir / "capacity.json").write_text(json.dumps(data))
    from offload_lab.analysis.report import make_report

    result = make_report(suite_dir, out_dir=suite_dir / "elsewhere", charts=False)
    assert any("not what the subjects' folders give" in w for w in result.warnings)
    assert ",100," in (suite_dir / "elsewhere" / "capacity.csv").read_text()  # the rebuilt value


def test_a_publication_keeps_the_suite_report_and_every_subject_flag_but_not_their_reports(suite_dir):
    """What scripts/publish-results.sh writes for a suite (--no-subject-reports): the subjects'
    own reports are left out, their warnings are not."""
    from offload_lab.analysis.capacity_report import NO_SUBJECT_REPORTS
    from offload_lab.analysis.report import make_report

    full = make_report(suite_dir, out_dir=suite_dir / "full", charts=False)
    assert main([str(suite_dir), "-q", "--no-subject-reports"]) == 0
    assert not [p for p in suite_dir.glob("*/report") if p.parent.name in NAMES]
    summary = (suite_dir / "report" / "summary.md").read_text()
    assert NO_SUBJECT_REPORTS in summary and "index.html" not in summary
    subject_flags = [w for w in full.warnings if w.split(":")[0] in NAMES]
    assert subject_flags and all(f"- {w}" in summary for w in subject_flags)
    assert (suite_dir / "report" / "capacity.png").is_file()


# --------------------------------------------------------------------------------------------
# the spread of each capacity (boundary repeats) and the ranking it qualifies


def repeated(rate, verdicts, p95s):
    """The probes at one rate: one per verdict, each with its p95."""
    return [probe(rate, passed, p95) for passed, p95 in zip(verdicts, p95s, strict=True)]


def repeated_subject(folder: Path, name, probes, drop_spread=False):
    d = folder / name
    (d / "steps").mkdir(parents=True)
    spec = {"modes": ["async"], "gateway": {}, "core": {}}
    (d / "run.json").write_text(json.dumps(run_file(run_id=name, spec=spec)))
    result = CapacityResult.of("async", Slo(), probes, "x", 3).as_dict()
    if drop_spread:  # capacity.json as written before boundary repeats
        del result["spread"]
    (d / "capacity.json").write_text(json.dumps(result))


@pytest.fixture
def spread_suite(tmp_path):
    folder = tmp_path / "spread"
    # kombu_pool: 125/s passed 3 of 3, 131/s once of three, 137/s never: its spread reaches 131/s
    repeated_subject(
        folder,
        "kombu_pool",
        repeated(125, [True] * 3, [17.0, 19.1, 18.3])
        + repeated(131, [False, True, False], [29.8, 19.0, 25.1])
        + repeated(137, [False] * 3, [30.0, 31.0, 32.0]),
    )
    # pipelined: 130/s every time, 136/s never: the next higher capacity, within kombu_pool's spread
    repeated_subject(
        folder, "pipelined", repeated(130, [True] * 3, [12.0] * 3) + repeated(136, [False] * 3, [40.0] * 3)
    )
    # celery: 96/s, well below kombu_pool's capacity and spread
    repeated_subject(
        folder, "celery", repeated(96, [True] * 3, [15.0] * 3) + repeated(100, [False] * 3, [21.0] * 3)
    )
    # a run from before repeats: one probe per rate, no spread in its capacity.json
    repeated_subject(folder, "old", [probe(50, True, 9.0), probe(100, False)], drop_spread=True)
    return folder


def test_the_table_gives_each_capacity_with_its_spread(spread_suite):
    names = ["kombu_pool", "pipelined", "celery", "old"]
    rows = {r["subject"]: r for r in build_table(spread_suite, names)["subjects"]}
    kombu = rows["kombu_pool"]
    assert (kombu["capacity_rps"], kombu["highest_passing_rps"], kombu["flipped_rates"]) == (125, 131, [131])
    assert (kombu["p95_at_capacity_ms"], kombu["p95_at_capacity_range_ms"]) == (18.3, [17.0, 19.1])
    assert spread_text(kombu) == "up to 131/s (flipped at 131/s; 3 repeats)"
    assert spread_text(rows["celery"]) == "none (3 repeats)"
    old = rows["old"]
    assert old["capacity_rps"] == 50 and spread_text(old) == "unknown (not repeated)"
    assert old["highest_passing_rps"] == 50 and old["boundary_repeats"] is None
    md = table_markdown(SUITE, build_table(spread_suite, names))
    line = next(x for x in md.splitlines() if x.startswith("| kombu_pool |"))
    assert "| 125/s | up to 131/s (flipped at 131/s; 3 repeats) | 2, within spread of pipelined |" in line
    assert "| 18.3 [17.0-19.1] | 131/s |" in line  # the first failure: 131/s failed in a repeat


def test_adjacent_subjects_within_a_spread_are_called_out(spread_suite):
    rows = {
        r["subject"]: r
        for r in build_table(spread_suite, ["kombu_pool", "pipelined", "celery", "old"])["subjects"]
    }
    assert {n: (r["rank"], r["within_spread_of"]) for n, r in rows.items()} == {
        "pipelined": (1, ["kombu_pool"]),  # kombu_pool passed 131/s once: above pipelined's 130/s
        "kombu_pool": (2, ["pipelined"]),
        "celery": (3, []),  # 96/s passed every time, 100/s never: below kombu_pool's 125/s
        "old": (4, []),
    }
    md = table_markdown(SUITE, build_table(spread_suite, list(rows)))
    assert "| 130/s | none (3 repeats) | 1, within spread of kombu_pool |" in md
    assert "| 96/s | none (3 repeats) | 3 |" in md


def test_a_capacity_its_repeats_do_not_back_says_so(tmp_path):
    """pika_shared on the lab (2026-12-07): 50/s failed once, the lower rates passed, 100/s passed
    the one probe the repeat budget left it, 200/s failed three times."""
    probes = (
        [probe(50, False, 249.4)]
        + [probe(r, True, 6.0) for r in (25, 37, 43, 46, 48, 48, 50, 48, 100)]
        + repeated(200, [False] * 3, [668.2, 863.2, 710.9])
    )
    repeated_subject(tmp_path, "pika_shared", probes)
    (row,) = build_table(tmp_path, ["pika_shared"])["subjects"]
    assert row["capacity_rps"] == 100 and (row["capacity_probes"], row["failed_below"]) == (1, [50])
    assert spread_text(row) == (
        "none (3 repeats); the capacity itself probed 1 of 3 times; a probe failed below it, at 50/s"
    )
