"""docs/result-format.md lists the keys of each file and the older shapes the reader accepts as
offload_lab.records defines them."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from offload_lab.records import (
    RUN_SHAPES,
    STEP_SHAPES,
    RunRecord,
    StepParameters,
    StepRecord,
    SuiteRecord,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "result-format.md").read_text()
RECORDS = (RunRecord, StepRecord, StepParameters, SuiteRecord)


def names(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.__name__)
def test_the_documented_keys_are_the_records_fields_in_order(record):
    (line,) = [x for x in DOC.splitlines() if x.startswith("- ") and f"`{record.__name__}`:" in x]
    documented = names(line.split(f"`{record.__name__}`:", 1)[1])
    assert documented == [f.name for f in fields(record)]


def test_the_keys_left_out_without_a_value_are_the_records():
    paragraph = DOC.split("Left out when they have no value", 1)[1].split("\n\n", 1)[0]
    documented = names(paragraph.split("\n", 1)[1])
    omitted = [f.name for r in RECORDS for f in fields(r) if f.metadata.get("omitted_when_none")]
    assert documented == omitted


def test_the_older_shapes_table_is_the_records():
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in DOC.split("### Older shapes", 1)[1].splitlines()
        if line.startswith(("| step |", "| run.json |"))
    ]
    documented = {(file, shape, version, frozenset(names(lacks))) for file, shape, version, lacks, _ in rows}
    defined = {
        (file, s.name, ", ".join(map(str, s.schema_versions)), s.lacks)
        for file, shapes in (("step", STEP_SHAPES), ("run.json", RUN_SHAPES))
        for s in shapes
        if s.lacks
    }
    assert documented == defined
