"""Every publication describes one version of the code: each run.json under docs/results names
the same commit, clean (`git_dirty` false). The loopback benchmark's bench.json files
(docs/results/bench) are held clean by tests/docs/test_published_bench.py."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def published_runs() -> dict[str, dict]:
    files = subprocess.run(
        ["git", "ls-files", "-z", "docs/results"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    return {name: json.loads((REPO / name).read_text()) for name in files if name.endswith("/run.json")}


def test_every_published_run_names_one_clean_commit():
    runs = published_runs()
    assert len(runs) >= 40, f"only {len(runs)} run.json files under docs/results"
    unclean = {name: run.get("git_dirty") for name, run in runs.items() if run.get("git_dirty") is not False}
    assert not unclean, f"runs not from a clean commit: {unclean}"
    commits = Counter(run.get("git_commit") for run in runs.values())
    assert len(commits) == 1, f"publications from more than one commit: {dict(commits)}"
    (commit,) = commits
    assert commit and len(commit) == 40, commit
