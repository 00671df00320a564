"""Every run.json, step file and suite capacity.json under docs/results and the test fixtures
(tests/analysis/fixtures, tests/sweep/fixtures) was written by some version of the project: each
reads through offload_lab.records as one of its named shapes, and written again and read back is
the same record."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from offload_lab import records
from offload_lab.records import RUN_SHAPES, STEP_SHAPES, RunRecord, StepRecord

REPO = Path(__file__).resolve().parents[2]
ROOTS = (REPO / "docs" / "results", *(REPO / "tests" / room / "fixtures" for room in ("analysis", "sweep")))
RUN_FOLDERS = sorted(p.parent for root in ROOTS for p in root.rglob(records.RUN_FILE))
SUITE_FOLDERS = sorted(
    p.parent for root in ROOTS for p in root.rglob(records.CAPACITY_FILE)
    if records.is_suite_table(json.loads(p.read_text()))
)  # fmt: skip


def shape_name(cls: type, data: dict, shapes) -> str:
    return records.shape_of(cls, data, shapes).name


@pytest.mark.parametrize("folder", RUN_FOLDERS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_run_and_step_reads_and_round_trips(folder, tmp_path):
    run = records.read_run(folder)
    assert RunRecord.from_dict(run.to_dict()) == run
    assert run.steps, folder
    for name in run.steps:
        step = records.read_step(folder / records.STEPS_DIR / name)
        assert step.file_name == name  # the record's rate, mode and index name its file
        assert records.read_step(records.write_step(tmp_path, step)) == step


def test_the_published_files_have_every_named_shape():
    """Each older shape the reader accepts is there to be read (else it is no longer needed)."""
    steps, runs = Counter(), Counter()
    for folder in RUN_FOLDERS:
        run_data = records.read_json(folder / records.RUN_FILE)
        runs[shape_name(RunRecord, run_data, RUN_SHAPES)] += 1
        for name in run_data["steps"]:
            data = records.read_json(folder / records.STEPS_DIR / name)
            steps[shape_name(StepRecord, data, STEP_SHAPES)] += 1
    assert set(steps) == {s.name for s in STEP_SHAPES}, steps
    assert set(runs) == {s.name for s in RUN_SHAPES}, runs


@pytest.mark.parametrize("folder", SUITE_FOLDERS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_suite_table_reads_and_round_trips(folder, tmp_path):
    suite = records.read_suite(folder)
    records.write_suite(tmp_path, suite)
    assert records.read_suite(tmp_path) == suite
    assert [row["subject"] for row in suite.subjects] == [s["name"] for s in suite.suite["subjects"]]
