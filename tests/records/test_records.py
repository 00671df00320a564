"""offload_lab.records: a record written and read back is the same record; the older shapes
read as their fields' defaults; anything else is refused, naming what is wrong."""

from __future__ import annotations

import ast
import json
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
from record_testlib import AT, run_file, step_file, step_record

from offload_lab import records
from offload_lab.records import (
    RUN_SHAPES,
    STEP_SHAPES,
    SUITE_SHAPES,
    RecordError,
    RunRecord,
    StepRecord,
    SuiteRecord,
)

REPO = Path(__file__).resolve().parents[2]


def full_step() -> StepRecord:
    """A step with every section set, as a sweep records one."""
    return step_record(
        {"index": 3, "mode": "sync", "rate": 50, "repeat": 2, "repeats": 3, "request_timeout_s": 10.0,
         "faults": [{"action": "gateway_restart", "at_s": 5.0}], "core": {"PREFETCH": "500"},
         "instruments": {"samples": True, "ledger": "file"}, "gateway_overrides": {"PUBLISHER": "x"},
         "core_overrides": {"PREFETCH": "500"}},
        limit={"label": "open"},
        clock={"t0_unix_s": 1.0, "load_started_unix_s": 1.5, "load_ended_unix_s": 31.5},
        k6={"metrics": {"iterations": {"values": {"count": 1500}}}},
        core={"completed": 0},
        broker={"queue": "tasks", "samples": [[0.0, 0, 0]]},
        hosts={"lab-core": {"group": "core", "cpu_pct": 3.0, "cpus": 1}},
        hosts_timeline={"interval_s": 1.0, "samples": []},
        samples={"file": "samples/03-sync-50-r2.csv.gz", "rows": 1500},
        ledger=None,
        faults=[{"action": "gateway_restart", "ok": True}],
        waited_for_empty_queue_s=0.0,
        outcome_records_left_before=None,
    )  # fmt: skip


def test_a_step_written_and_read_back_is_the_same_record(tmp_path):
    record = full_step()
    path = records.write_step(tmp_path, record)
    assert path == tmp_path / "steps" / "03-sync-50-r2.json"
    assert records.read_step(path) == record
    assert list(json.loads(path.read_text())) == [f.name for f in fields(StepRecord)]


def test_a_run_written_and_read_back_is_the_same_record(tmp_path):
    sweep = RunRecord(**{**run_file(run_id="r", spec_name="t", overrides={"rates": [50]}, inventory="x",
                                    planned_steps=["01-sync-50.json"], steps=["01-sync-50.json"],
                                    timing={"wall_s": 3.0}, error="KeyboardInterrupt")})  # fmt: skip
    capacity = RunRecord(
        run_id="c", spec_name="capacity-sync", capacity_search={"start": 50}, status="running"
    )
    for record in (sweep, capacity):
        records.write_run(tmp_path, record)
        assert records.read_run(tmp_path) == record
    written = json.loads((tmp_path / "run.json").read_text())
    assert "overrides" not in written and "error" not in written  # a capacity run's has neither
    assert written["ended_at"] is None  # while running: null, not absent


def test_a_suite_written_and_read_back_is_the_same_record(tmp_path):
    record = SuiteRecord(suite={"name": "lab", "subjects": []}, run_id="s", started_at=AT, status="partial",
                         reruns=[{"at": AT, "only": ["sync"]}], noop_capacity_rps=400,
                         subjects=[{"subject": "sync", "capacity_rps": 100}])  # fmt: skip
    records.write_suite(tmp_path, record)
    assert records.read_suite(tmp_path) == record
    assert json.loads((tmp_path / "capacity.json").read_text())["kind"] == "capacity-suite"


def test_a_single_search_result_is_no_suite(tmp_path):
    (tmp_path / "capacity.json").write_text(json.dumps({"mode": "async", "capacity_rps": 100, "probes": []}))
    with pytest.raises(RecordError, match="not a capacity suite's table"):
        records.read_suite(tmp_path)


def test_the_step_file_name_is_the_records_own():
    assert full_step().file_name == "03-sync-50-r2.json"
    assert step_record({"index": 12, "mode": "async", "rate": 400}).file_name == "12-async-400.json"
    name = records.parse_step_file_name("03-sync-50-r2.json")
    assert (name.index, name.mode, name.rate, name.repeat) == (3, "sync", 50.0, 2)
    assert records.parse_step_file_name("notes.json") is None


@pytest.mark.parametrize("shape", STEP_SHAPES, ids=lambda s: s.name)
def test_each_older_step_shape_reads_as_the_defaults(shape):
    data = step_file()
    for key in shape.lacks:
        section, _, name = key.rpartition(".")
        (data[section] if section else data).pop(name)
    assert StepRecord.from_dict(data) == step_record()  # what it lacks: the defaults


@pytest.mark.parametrize("shape", RUN_SHAPES, ids=lambda s: s.name)
def test_each_older_run_shape_reads_as_the_defaults(shape):
    data = run_file(run_id="r")
    for key in shape.lacks:
        data.pop(key)
    assert RunRecord.from_dict(data) == RunRecord.from_dict(run_file(run_id="r"))


def test_every_key_an_older_shape_lacks_has_a_default():
    for cls, shapes in ((StepRecord, STEP_SHAPES), (RunRecord, RUN_SHAPES), (SuiteRecord, SUITE_SHAPES)):
        for shape in shapes:
            for key in shape.lacks:
                section, _, name = key.rpartition(".")
                owner = records.StepParameters if section == "step" else cls
                field = next(f for f in fields(owner) if f.name == name)
                assert (field.default, field.default_factory) != (MISSING, MISSING), (shape.name, key)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda d: d.pop("clock"),
            "lacks clock, which its closest known shape ('current', offload_lab/records/shapes.py) has",
        ),
        (lambda d: d["step"].pop("rate"), "lacks step.rate"),
        (lambda d: d.update(extra=1), "unknown key(s) extra"),
        (lambda d: d["step"].update(colour="red"), "unknown key(s) step.colour"),
        (lambda d: d.update(schema_version=2), "schema_version 2: this reader knows 1"),
        (lambda d: d["step"].update(rate="fast"), "step.rate: 'fast' is not a number"),
        (lambda d: d["step"].update(rate=0), "step.rate must be above 0"),
        (lambda d: d["step"].update(index=True), "step.index: True is not an integer"),
        (lambda d: d.update(k6=None), "k6: None is not an object"),
        (lambda d: d.update(step=[]), "step: not a JSON object"),
    ],
)
def test_a_step_file_of_no_known_shape_is_refused_naming_why(change, message):
    data = step_file()
    change(data)
    with pytest.raises(RecordError) as exc:
        StepRecord.from_dict(data)
    assert message in str(exc.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty file"),
        ('{"schema_version": 1, "st', "not valid JSON, truncated or corrupt"),
        ("[1, 2]", "not a JSON object (a list)"),
    ],
)
def test_a_damaged_file_is_refused_naming_why(tmp_path, text, message):
    (tmp_path / "run.json").write_text(text)
    with pytest.raises(RecordError, match=message.replace("(", r"\(").replace(")", r"\)")):
        records.read_run(tmp_path)


def test_records_import_only_the_standard_library_and_each_other():
    """The bottom of the import graph (tests/test_architecture.py keeps the rest of offload_lab
    out): every other room may import it, and it needs nothing installed."""
    for path in sorted((REPO / "offload_lab" / "records").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {
            a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        }
        imported |= {
            n.module.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module and not n.level
        }
        assert imported <= set(sys.stdlib_module_names) | {"__future__"}, path.name
        assert all(n.level in (0, 1) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)), path.name
