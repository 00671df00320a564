"""Reading the cores' file ledgers (offload_lab/services/ledger_files.py) with the same shell commands the
lab runs over SSH, here on local files: each core host's new whole lines since the last read,
starting at the end of what the files held before the sweep."""

from __future__ import annotations

import json

import pytest
from sweep_fakes import LocalRemote

from offload_lab.services.ledger_files import LedgerFileError, LedgerFiles


def record(task_id: str, host: str) -> str:
    return json.dumps({"task_id": task_id, "outcome": "done", "core_host": host}) + "\n"


@pytest.fixture
def files(tmp_path):
    paths = {"core1": tmp_path / "core1.jsonl", "core2": tmp_path / "core2.jsonl"}
    paths["core1"].write_text(record("before-1", "core1"))  # an earlier sweep's
    reader = LedgerFiles(
        {name: LocalRemote() for name in paths}, {n: str(p) for n, p in paths.items()}, lambda: ["dead"]
    )
    return paths, reader


def append(path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


def test_only_whole_lines_written_since_the_last_read_are_taken_from_every_core(files):
    paths, reader = files
    assert reader.take() == []  # what the files held before: not this sweep's
    append(paths["core1"], record("t-1", "core1"))
    append(paths["core2"], record("t-2", "core2") + '{"task_id": "t-3", "outc')  # t-3 half written
    taken = sorted(json.loads(line)["task_id"] for line in reader.take())
    assert taken == ["t-1", "t-2"]
    append(paths["core2"], 'ome": "done"}\n')
    assert [json.loads(line)["task_id"] for line in reader.take()] == ["t-3"]
    assert reader.take() == [] and reader.dead_letters() == ["dead"]


def test_purge_skips_what_is_there_and_a_missing_file_is_empty(files, tmp_path):
    paths, reader = files
    append(paths["core1"], record("t-1", "core1"))
    reader.purge()
    assert reader.take() == []
    paths["core2"].write_text(record("t-9", "core2"))  # created after the purge: all of it is new
    assert [json.loads(line)["task_id"] for line in reader.take()] == ["t-9"]


def test_a_truncated_ledger_file_is_an_error_not_a_silent_gap(files):
    paths, reader = files
    reader.take()
    paths["core1"].write_text("")
    with pytest.raises(LedgerFileError, match="shrank"):
        reader.take()
