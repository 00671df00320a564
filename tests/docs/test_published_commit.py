"""Every publication describes one version of the code: each run record under docs/results (the
lab's run.json files and the loopback benchmark's bench.json files, whose commit is in their
`settings`) names the same commit, clean (`git_dirty` false)."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def tracked_results() -> list[str]:
    return subprocess.run(
        ["git", "ls-files", "-z", "docs/results"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")


def published_provenance() -> dict[str, dict]:
    """Each tracked run record's provenance: a run.json is its own, a bench.json's is its settings."""
    records = {}
    for name in tracked_results():
        if name.endswith("/run.json"):
            records[name] = json.loads((REPO / name).read_text())
        elif name.endswith("/bench.json"):
            records[name] = json.loads((REPO / name).read_text())["settings"]
    return records


def test_every_published_run_names_one_clean_commit():
    records = published_provenance()
    runs = [name for name in records if name.endswith("/run.json")]
    benches = [name for name in records if name.endswith("/bench.json")]
    assert len(runs) >= 40, f"only {len(runs)} run.json files under docs/results"
    assert len(benches) == 2, f"the loopback benchmark publishes both modes: {benches}"
    dirty = {name: record.get("git_dirty") for name, record in records.items()}
    unclean = {name: value for name, value in dirty.items() if value is not False}
    assert not unclean, f"runs not from a clean commit: {unclean}"
    commits = Counter(record.get("git_commit") for record in records.values())
    assert len(commits) == 1, f"publications from more than one commit: {dict(commits)}"
    (commit,) = commits
    assert commit and len(commit) == 40, commit
