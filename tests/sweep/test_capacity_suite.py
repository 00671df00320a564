"""`fab capacity --suite`: the suite file checked as a whole before any load, one search per
subject into its own folder, the table of all of them (capacity.json, capacity.md), --only
running subjects again into the same folder; no-op as a subject (POST /noop: no ledger, no
drain, no backlog, never a lost task). The lab is faked at its boundary (SweepServices)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from sweep_fakes import FakeCore, FakeCpu, FakeK6, RecordingRemote

from offload_lab.analysis.capacity_table import build_table, table_markdown
from offload_lab.capacity import suite as capacity_suite
from offload_lab.capacity.probe import Slo, judge
from offload_lab.capacity.search import plan
from offload_lab.cli import capacity_commands, run_start
from offload_lab.cli.usage import UsageError
from offload_lab.plan.gateway_spec import PUBLISHERS
from offload_lab.plan.spec import SpecError
from offload_lab.records import read_step
from offload_lab.run.connections import ProvisionedSettings
from offload_lab.run.sweep import SweepServices
from offload_lab.services.gateway import GatewaySettings

FIXTURES = Path(__file__).parent / "fixtures"

CONFIRMED = ("kombu_pool", "pika_per_request", "pika_shared", "celery", "celery_default_pool", "dramatiq")


@pytest.mark.parametrize("name, slo", [("lab", Slo(20, 0.1)), ("saturation", Slo(500, 0.1))])
def test_the_lab_suites_have_every_subject_the_table_needs(name, slo):
    suite = capacity_suite.load(name)
    by_name = {s.name: s.plan for s in suite.subjects}
    assert by_name["sync"].mode == "sync" and by_name["noop"].mode == "noop"
    confirmed = {
        p.spec.gateway["PUBLISHER"]
        for p in by_name.values()
        if p.mode == "async" and p.spec.gateway.get("PUBLISH_CONFIRM") == "1"
    }
    assert confirmed == {*CONFIRMED, "pipelined"} and confirmed <= set(PUBLISHERS)
    reference = by_name["kombu_pool_no_confirm"].spec.gateway
    assert (reference["PUBLISHER"], reference["PUBLISH_CONFIRM"]) == ("kombu_pool", "0")
    assert suite.slo == slo  # one SLO for every row
    assert {s.plan.spec.gateway["GUNICORN_WORKER_CLASS"] for s in suite.subjects} == {"gevent"}
    assert by_name["noop"].spec.work_ms == 0 and by_name["sync"].spec.work_ms == 1000


def suite_file(tmp_path, text):
    path = tmp_path / "suite.yml"
    path.write_text(text)
    return str(path)


def test_every_problem_of_a_suite_is_named_at_once(tmp_path):
    bad = """
name: broken
slo_p95_ms: fast
start: 100
colour: blue
subjects:
  - {name: a, mode: batch}
  - {name: a, mode: async}
  - {name: b, mode: async, gateway: {PUBLISHER: carrier_pigeon}, start: 0}
  - {name: c, mode: noop, work_ms: 5}
  - {name: report, mode: sync}
  - {name: d, mode: sync, max_rate: 50}
  - {name: e, mode: async, core: {PREFETCH: 0}, speed: 3}
"""
    with pytest.raises(SpecError) as info:
        capacity_suite.load(suite_file(tmp_path, bad))
    problems = "\n".join(info.value.problems)
    for part in (
        "colour: unknown key",
        "slo_p95_ms: must be a number, got 'fast'",
        "subjects[0] (a).mode: must be sync, async or noop, got 'batch'",
        "subjects[1].name: 'a' is already a subject",
        "subjects[2] (b).gateway.PUBLISHER: unknown publisher 'carrier_pigeon'",
        "subjects[2] (b).start: must be between 1 and 5000, got 0",
        "subjects[3] (c).work_ms: a noop probe works nothing",
        "subjects[4].name: required, letters, digits, _ . - (not report); got 'report'",
        "subjects[5] (d).max_rate: must not be below start (100), got 50",
        "subjects[6] (e).core.PREFETCH: must be between 1 and 65535, got 0",
        "subjects[6] (e).speed: unknown key",
    ):
        assert part in problems
    with pytest.raises(SpecError, match="subjects: required"):
        capacity_suite.validate({"name": "empty"})


def test_a_bad_suite_or_option_stops_before_the_lab_is_touched(tmp_path, monkeypatch):
    def no_lab(*args, **kwargs):
        raise AssertionError("the lab was touched")

    monkeypatch.setattr(run_start, "LabConnections", no_lab)
    broken = suite_file(tmp_path, "name: x\nsubjects: [{name: a, mode: batch}]\n")
    with pytest.raises(UsageError, match="subjects\\[0\\] \\(a\\).mode: must be sync, async or noop"):
        capacity_commands.capacity({}, suite=broken, results_dir=str(tmp_path))
    with pytest.raises(UsageError, match="drop --mode, --start"):
        capacity_commands.capacity({"mode": "async", "start": "50"}, suite="lab", results_dir=str(tmp_path))
    with pytest.raises(UsageError, match="--only: no subject 'kombu' \\(known: sync, noop,"):
        capacity_commands.capacity({}, suite="lab", only="kombu,noop", results_dir=str(tmp_path))
    with pytest.raises(UsageError, match="--only: names subjects of a suite"):
        capacity_commands.capacity({"mode": "noop"}, only="noop")
    with pytest.raises(UsageError, match="unknown spec 'nope'"):
        capacity_commands.capacity({}, suite="nope")
    assert not any(tmp_path.glob("*/capacity.json"))


# --------------------------------------------------------------------------------------------
# a whole suite against a fake lab whose capacity depends on the path


CAPACITY = {"sync": 60, "noop": 500, "async": 100}


class SuiteK6(FakeK6):
    """p95 within the SLO up to the path's CAPACITY, 40 ms over it (sync: above the work)."""

    def __init__(self):
        super().__init__(load_s=0.02)
        self.steps = []

    def run(self, step):
        self.steps.append(step)
        summary = super().run(step)
        over = 4.0 if step.rate <= CAPACITY[step.mode] else 40.0
        base = step.work_ms if step.mode == "sync" else 0
        values = {"avg": base + 2.0, "med": base + 2.0, "p(95)": base + over}
        summary["metrics"]["http_req_duration"]["values"].update(values)
        return summary

    def prepare(self):
        pass

    def version(self):
        return "k6 fake"

    def cleanup(self):
        pass


class Outcomes:
    """The core's outcome records: none (the fake k6's samples carry no task id)."""

    def __init__(self):
        self.taken = 0

    def take(self):
        self.taken += 1
        return []

    def dead_letters(self):
        return []

    def purge(self):
        pass


class SuiteConnections:
    opened: list[str] = []

    def __init__(self, lab, run_id, password):
        SuiteConnections.opened.append(run_id)
        self.k6 = SuiteK6()
        self.inv = lab
        self.mgmt = type("Mgmt", (), {"base_url": "http://broker:15672", "version": lambda self: "3.10.8"})()

    def preflight(self):
        return []

    def settings(self):
        return ProvisionedSettings(
            gateway={"PUBLISHER": "kombu_pool"}, cores={"lab-core": {"PREFETCH": "500"}}
        )

    def hosts_with_cpus(self):
        return {}

    def sweep_services(self):
        return SweepServices(
            k6=self.k6,
            core=FakeCore(),
            gateway=GatewaySettings(
                RecordingRemote(), "http://gw:8000", healthy=lambda u: True, sleep=lambda s: None
            ),
            cpu=FakeCpu(),
            queue_depth=lambda queue: 0,
            ledgers={"broker": Outcomes()},
            sample_interval_s=0.02,
            sleep=lambda s: time.sleep(min(s, 0.01)),
        )

    def close(self):
        pass


SMALL_SUITE = """
name: small
duration_s: 1
start: 50
max_rate: 2000
subjects:
  - {name: sync, mode: sync, start: 25}
  - {name: noop, mode: noop, start: 200}
  - {name: kombu_pool, mode: async, gateway: {PUBLISHER: kombu_pool, PUBLISH_CONFIRM: 1}}
"""


@pytest.fixture
def fake_lab(monkeypatch):
    SuiteConnections.opened = []
    monkeypatch.setattr(run_start, "LabConnections", SuiteConnections)
    monkeypatch.setattr(run_start, "password", lambda: "pw")


def run_small_suite(tmp_path, inventory_dir, **kwargs):
    return capacity_commands.capacity(
        {},
        inventory=str(inventory_dir / "hosts.yml"),
        results_dir=str(tmp_path / "results"),
        suite=suite_file(tmp_path, SMALL_SUITE),
        **{"run_id": "suite", **kwargs},
    )


def test_a_suite_runs_one_search_per_subject_and_writes_the_table(tmp_path, inventory_dir, fake_lab):
    assert run_small_suite(tmp_path, inventory_dir) == 0
    folder = tmp_path / "results" / "suite"
    table = json.loads((folder / "capacity.json").read_text())
    assert table["kind"] == "capacity-suite" and table["status"] == "complete"
    rows = {r["subject"]: r for r in table["subjects"]}
    assert list(rows) == ["sync", "noop", "kombu_pool"]
    assert {n: r["capacity_rps"] for n, r in rows.items()} == {"sync": 60, "noop": 500, "kombu_pool": 100}
    assert rows["kombu_pool"]["share_of_noop"] == 0.2 and table["noop_capacity_rps"] == 500
    assert rows["kombu_pool"]["first_failure_rps"] == 103
    assert rows["kombu_pool"]["failure_reasons"] == ["p95 40.0 ms over the SLO 20 ms"]
    assert rows["kombu_pool"]["p95_at_capacity_ms"] == 4.0
    assert "PUBLISHER=kombu_pool PUBLISH_CONFIRM=1" in rows["kombu_pool"]["settings"]
    for name in rows:  # each subject's folder is what a single `fab capacity` writes
        single = json.loads((folder / name / "capacity.json").read_text())
        assert single["capacity_rps"] == rows[name]["capacity_rps"]
        assert (folder / name / "capacity.md").is_file() and (folder / name / "run.json").is_file()
    assert (folder / "suite.yml").read_text() == SMALL_SUITE
    md = (folder / "capacity.md").read_text()
    assert md == table_markdown(table["suite"], build_table(folder, list(rows)))
    assert "| kombu_pool | async |" in md and "| 100/s | none (3 repeats) | 2 | 20% | 4.0 | 103/s |" in md
    assert {n: (r["rank"], r["within_spread_of"]) for n, r in rows.items()} == {
        "noop": (1, []),
        "kombu_pool": (2, []),
        "sync": (3, []),
    }
    assert "[kombu_pool/](kombu_pool/capacity.md)" in md
    # each subject's k6 runs under an id of its own: task ids never repeat across subjects
    assert SuiteConnections.opened == ["suite.sync", "suite.noop", "suite.kombu_pool"]


def test_noop_probes_post_noop_and_claim_no_ledger_drain_or_backlog(tmp_path, inventory_dir, fake_lab):
    assert run_small_suite(tmp_path, inventory_dir) == 0
    steps = tmp_path / "results" / "suite" / "noop" / "steps"
    files = sorted(steps.iterdir())
    assert files and all("-noop-" in f.name for f in files)
    for f in files:
        data = json.loads(f.read_text())
        assert data["step"]["mode"] == "noop" and data["step"]["work_ms"] == 0
        assert data["ledger"] is None  # nothing was published: no task can be lost
        assert data["limit"]["needs"]["core"] == 0 and data["limit"]["label"] != "core-capped"
        probe = judge(read_step(f), Slo())
        assert not any("backlog" in r or "lost" in r for r in probe.reasons + probe.evidence)
    async_step = next((tmp_path / "results" / "suite" / "kombu_pool" / "steps").iterdir())
    assert json.loads(async_step.read_text())["ledger"]["lost"] == 0  # async keeps its ledger


def test_only_runs_subjects_again_into_the_same_folder(tmp_path, inventory_dir, fake_lab):
    assert run_small_suite(tmp_path, inventory_dir) == 0
    folder = tmp_path / "results" / "suite"
    with pytest.raises(UsageError, match="already exists"):
        run_small_suite(tmp_path, inventory_dir)
    CAPACITY["async"] = 200
    try:
        assert run_small_suite(tmp_path, inventory_dir, only="kombu_pool") == 0
    finally:
        CAPACITY["async"] = 100
    table = json.loads((folder / "capacity.json").read_text())
    assert [r["capacity_rps"] for r in table["subjects"]] == [60, 500, 200]
    assert [r["only"] for r in table["reruns"]] == [["kombu_pool"]]
    replaced = list((folder / "_replaced").iterdir())
    assert len(replaced) == 1 and replaced[0].name.startswith("kombu_pool-")
    assert json.loads((replaced[0] / "capacity.json").read_text())["capacity_rps"] == 100


def test_a_single_noop_search_plans_noop_probes():
    p = plan({"mode": "noop", "start": "400"})
    assert p.mode == "noop" and p.spec.modes == ["noop"] and p.spec.work_ms == 0
    assert p.spec.name == "capacity-noop"


def test_python_m_analysis_reports_the_suite_and_each_subject(tmp_path, inventory_dir, fake_lab):
    from offload_lab.analysis.cli import main

    assert run_small_suite(tmp_path, inventory_dir) == 0
    folder = tmp_path / "results" / "suite"
    # no charts: the fake k6's one sample is years away from its step's clock (no timeline);
    # the chart itself: tests/analysis/test_capacity_report.py
    assert main([str(folder), "-q", "--no-charts"]) == 0
    summary = (folder / "report" / "summary.md").read_text()
    assert "| noop | noop |" in summary and "- kombu_pool: [../kombu_pool/report/index.html]" in summary
    for name in ("sync", "noop", "kombu_pool"):
        assert (folder / name / "report" / "summary.csv").is_file()
    assert "unknown mode" not in summary  # noop is a mode the analysis knows


def test_rejudge_judges_the_recorded_probes_again_without_the_lab(tmp_path, inventory_dir, fake_lab):
    assert run_small_suite(tmp_path, inventory_dir) == 0
    folder = tmp_path / "results" / "suite"
    table = json.loads((folder / "capacity.json").read_text())
    SuiteConnections.opened = []
    # judged again by the same rules, nothing changes but the record that it was
    assert capacity_commands.capacity({}, rejudge=str(folder)) == 0
    again = json.loads((folder / "capacity.json").read_text())
    assert again["subjects"] == table["subjects"] and "rejudged_at" in again
    assert SuiteConnections.opened == []  # no lab, no load
    # a step whose figures now fail the SLO: its verdict changes, the capacity follows down to a
    # rate that passed in every probe, and 100/s (passed in its two repeats) is where it flipped
    steps = folder / "kombu_pool" / "steps"
    assert sorted(f.name for f in steps.glob("*-async-100-*")) == [
        "02-async-100-r1.json",
        "09-async-100-r2.json",
        "11-async-100-r3.json",
    ]
    step = json.loads((steps / "02-async-100-r1.json").read_text())
    step["k6"]["metrics"]["http_req_duration"]["values"]["p(95)"] = 40.0
    (steps / "02-async-100-r1.json").write_text(json.dumps(step))
    assert capacity_commands.capacity({}, rejudge=str(folder)) == 1
    rows = {r["subject"]: r for r in json.loads((folder / "capacity.json").read_text())["subjects"]}
    assert rows["kombu_pool"]["capacity_rps"] == 50 and rows["kombu_pool"]["first_failure_rps"] == 100
    assert rows["kombu_pool"]["flipped_rates"] == [100] and rows["kombu_pool"]["highest_passing_rps"] == 100
    single = json.loads((folder / "kombu_pool" / "capacity.json").read_text())
    assert single["rejudged"]["verdicts_changed"] == [100]
    assert single["spread"]["text"].startswith("verdicts flipped at 100/s: 50/s passed 1 of 1")
    with pytest.raises(UsageError, match="--rejudge: judges what a run recorded; drop --mode"):
        capacity_commands.capacity({"mode": "async"}, rejudge=str(folder))
    with pytest.raises(UsageError, match="has no capacity.json"):
        capacity_commands.capacity({}, rejudge=str(tmp_path))


def test_rejudge_keeps_working_on_a_run_from_before_boundary_repeats(tmp_path):
    """A real search from before boundary repeats, kept as a fixture (the broker comparison's first
    capacity run on Debian 13, 8dc0bab, as published until its republication): one probe per rate,
    no boundary_repeats in its run.json, no spread in its capacity.json."""
    published = FIXTURES / "capacity-before-repeats"
    run = tmp_path / "capacity-r1"
    shutil.copytree(published / "steps", run / "steps")
    for name in ("run.json", "capacity.json"):
        shutil.copy(published / name, run / name)
    before = json.loads((run / "capacity.json").read_text())
    assert "spread" not in before
    assert "boundary_repeats" not in json.loads((run / "run.json").read_text())["capacity_search"]
    assert capacity_commands.capacity({}, rejudge=str(run)) == 0
    after = json.loads((run / "capacity.json").read_text())
    assert after["capacity_rps"] == before["capacity_rps"] == 550
    assert [p["step_file"] for p in after["probes"]] == [p["step_file"] for p in before["probes"]]
    unknown = "unknown: no rate was probed more than once (a run from before boundary repeats)"
    assert after["spread"]["text"] == unknown and after["spread"]["boundary_repeats"] is None
    assert f"**Spread:** {unknown}." in (run / "capacity.md").read_text()
