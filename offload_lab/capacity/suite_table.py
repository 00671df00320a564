"""The table of a capacity suite's folder: capacity.json (its SuiteRecord) and capacity.md,
rebuilt from its subjects' folders (offload_lab.analysis.capacity_table) by `fab capacity
--suite` after every subject and by `fab capacity --rejudge`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..analysis.capacity_table import build_table, table_markdown
from ..records import RUN_FILE, RecordError, SuiteRecord, read_suite, write_suite


def previous_suite(path: Path) -> SuiteRecord | None:
    """The suite folder's record, None when it has none (or its capacity.json is no suite's)."""
    try:
        return read_suite(path)
    except RecordError:
        return None


def write_suite_table(path: Path, record: SuiteRecord) -> SuiteRecord:
    """capacity.json and capacity.md of the suite folder, the table rebuilt from its subjects'
    folders (`record`: the suite as run, Suite.as_dict, and its state)."""
    names = [s["name"] for s in record.suite["subjects"] if (path / s["name"] / RUN_FILE).is_file()]
    table = build_table(path, names)
    record = replace(record, noop_capacity_rps=table["noop_capacity_rps"], subjects=table["subjects"])
    write_suite(path, record)
    (path / "capacity.md").write_text(table_markdown(record.suite, table), encoding="utf-8")
    return record
