"""A run says which code it ran: its commit, whether the tree was dirty and, if so, the diff
(git.diff beside run.json); publishing refuses a dirty run (scripts/publish-results.sh)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from offload_lab.analysis import broker_comparison as bc
from offload_lab.cli import run_start
from offload_lab.records import RunRecord, write_run
from offload_lab.run.results import GIT_DIFF_FILE, RunFolder

REPO = Path(__file__).resolve().parents[2]


def test_a_dirty_run_keeps_its_diff_beside_run_json_not_inside_it(tmp_path):
    folder = RunFolder(tmp_path, "r1")
    folder.create(RunRecord(git_commit="abc", git_dirty=True), git_diff="--- a/x\n+++ b/x\n")
    meta = json.loads((folder.path / "run.json").read_text())
    assert (folder.path / GIT_DIFF_FILE).read_text() == "--- a/x\n+++ b/x\n"
    assert meta["git_diff_file"] == GIT_DIFF_FILE and "git_diff" not in meta and meta["git_dirty"] is True


def test_a_clean_run_has_no_diff_file(tmp_path):
    folder = RunFolder(tmp_path, "r2")
    folder.create(RunRecord(git_commit="abc", git_dirty=False))
    assert not (folder.path / GIT_DIFF_FILE).exists()
    assert "git_diff_file" not in json.loads((folder.path / "run.json").read_text())


def test_git_info_reads_this_checkout():
    state = run_start.git_info()
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    assert state["git_commit"] == head and isinstance(state["git_dirty"], bool)
    assert ("git_diff" in state) == state["git_dirty"]


def publish(run_dir: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["scripts/publish-results.sh", str(run_dir), name],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_publishing_refuses_a_dirty_run_and_keeps_the_old_publication(tmp_path):
    name = "test-refused-dirty-run"
    run_dir = tmp_path / "run"
    (run_dir / "steps").mkdir(parents=True)
    write_run(run_dir, RunRecord(git_commit="abc", git_dirty=True))
    published = REPO / "docs" / "results" / name
    published.mkdir()
    try:
        (published / "run.json").write_text("the earlier publication")
        result = publish(run_dir, name)
        assert result.returncode != 0
        assert "not published: git_dirty is True" in result.stderr
        assert (published / "run.json").read_text() == "the earlier publication"
    finally:
        shutil.rmtree(published)


def test_publishing_refuses_a_run_json_that_is_no_run_record(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "steps").mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"git_commit": "abc", "git_dirty": False, "steps": []}))
    result = publish(run_dir, "test-refused-no-record")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "not published: its run.json is no run record (lacks " in result.stderr
    assert not (REPO / "docs" / "results" / "test-refused-no-record").exists()


def test_publishing_copies_every_raw_folder_of_a_clean_run(tmp_path):
    """The ledger's outcome records and the dead letters a step looked at travel with the run,
    so that the published ledger tables trace back to them."""
    name = "test-published-raw-folders"
    run_dir = tmp_path / "run"
    shutil.copytree(REPO / "tests" / "analysis" / "fixtures" / "sweep", run_dir)
    set_run_fields(run_dir, git_commit="abc", git_dirty=False)
    for raw in ("samples", "outcomes", "dead_letters"):
        (run_dir / raw).mkdir()
        (run_dir / raw / "02-async-50.jsonl.gz").write_bytes(b"raw " + raw.encode())
    published = REPO / "docs" / "results" / name
    try:
        result = publish(run_dir, name)
        assert result.returncode == 0, result.stderr
        for raw in ("samples", "outcomes", "dead_letters"):
            assert (published / raw / "02-async-50.jsonl.gz").read_bytes() == b"raw " + raw.encode()
        assert (published / "report" / "summary.md").is_file()
    finally:
        shutil.rmtree(published, ignore_errors=True)


def set_run_fields(run_dir: Path, **fields) -> None:
    meta_path = run_dir / "run.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), **fields}))


def comparison_run(tmp_path: Path) -> Path:
    """A broker comparison's shape (scripts/compare-brokers.sh): RELEASE/brokers and RELEASE/RUN folders."""
    run_dir = tmp_path / "comparison"
    shutil.copytree(REPO / "tests" / "analysis" / "fixtures" / "sweep", run_dir / "trixie" / "brokers")
    set_run_fields(run_dir / "trixie" / "brokers", git_commit="abc", git_dirty=False)
    shutil.copytree(
        REPO / "tests" / "sweep" / "fixtures" / "capacity-before-repeats", run_dir / "trixie" / "capacity-r1"
    )
    return run_dir


def test_publishing_a_broker_comparison_copies_each_release_s_runs_and_writes_the_comparison(tmp_path):
    name = "test-published-comparison"
    published = REPO / "docs" / "results" / name
    try:
        result = publish(comparison_run(tmp_path), name)
        assert result.returncode == 0, result.stderr
        for each in ("brokers", "capacity-r1"):
            assert (published / "trixie" / each / "run.json").is_file(), each
        assert (published / "trixie" / "brokers" / "report" / "summary.md").is_file()
        assert (published / "trixie" / "capacity-r1" / "capacity.json").is_file()
        assert not (published / "trixie" / "capacity-r1" / "report").exists()
        table = bc.comparison_markdown(bc.load_comparison(published))
        assert (published / bc.TABLE_FILE).read_text() == table  # written from the copies
        assert (published / bc.JSON_FILE).is_file()
        assert "550" in table  # the fixture search's capacity, read from the copy
    finally:
        shutil.rmtree(published, ignore_errors=True)


def test_publishing_a_broker_comparison_refuses_it_when_one_run_is_dirty(tmp_path):
    name = "test-refused-comparison"
    run_dir = comparison_run(tmp_path)
    set_run_fields(run_dir / "trixie" / "capacity-r1", git_dirty=True)
    result = publish(run_dir, name)
    assert result.returncode != 0 and "capacity-r1: not published: git_dirty is True" in result.stderr
    assert not (REPO / "docs" / "results" / name).exists()
