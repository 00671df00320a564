"""The published broker comparison (docs/results/brokers): RabbitMQ 4.0 on Debian 13 against 3.10
on Debian 12, from one clean commit, every step file naming its broker; its tables and the
block its page quotes are what the committed runs give today (analysis/broker_comparison.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from offload_lab.analysis import broker_comparison as bc

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "results" / "brokers"
EXPECTED = {"trixie": "4.0.", "bookworm": "3.10."}


@pytest.fixture(scope="module")
def releases():
    return bc.load_comparison(OUT)


def test_both_releases_are_published_with_their_runs(releases):
    tracked = set(subprocess.run(["git", "ls-files", "docs/results/brokers"], cwd=REPO,
                                 capture_output=True, text=True, check=True).stdout.split())  # fmt: skip
    assert {r["release"] for r in releases} == set(EXPECTED)
    for r in releases:
        assert r["rabbitmq_version"].startswith(EXPECTED[r["release"]]), r["release"]
        assert len(r["capacity"]) >= 3 and all(c["capacity_rps"] for c in r["capacity"]), r["capacity"]
        assert r["cluster"], r["release"]  # the cluster profile's part: quorum queues on 3 nodes
        for run in ("brokers", "cluster", *(c["run"] for c in r["capacity"])):
            assert f"docs/results/brokers/{r['release']}/{run}/run.json" in tracked, (r["release"], run)
    assert f"docs/results/brokers/{bc.TABLE_FILE}" in tracked


def test_every_run_is_from_a_clean_commit_one_per_profile():
    """The default profile's runs share one commit, and the cluster's runs one (they may differ:
    each part can run on its own; tests/docs/test_published_commit.py holds today's to one)."""
    metas = {p: json.loads(p.read_text()) for p in sorted(OUT.glob("*/*/run.json"))}
    assert len(metas) >= 2 * 5  # per release: the brokers run, 3 capacity searches, the cluster run
    assert not any(m["git_dirty"] for m in metas.values())
    for profile in ("cluster", "default"):
        commits = {
            m["git_commit"]
            for p, m in metas.items()
            if (p.parent.name == "cluster") == (profile == "cluster")
        }
        assert len(commits) == 1, (profile, commits)


def test_every_step_file_names_its_broker_and_queues():
    steps = sorted(OUT.glob("*/*/steps/*.json"))
    assert steps
    for path in steps:
        release = path.parents[2].name
        facts = json.loads(path.read_text())["broker"]["facts"]
        assert facts["rabbitmq_version"].startswith(EXPECTED[release]), path
        assert {"tasks", "tasks.done", "tasks.dead"} <= set(facts["queues"]), path


def test_every_repeat_is_there(releases):
    for r in releases:
        rates = bc.rates([r])
        assert rates == [100, 200, 300, 400], (r["release"], rates)
        for rate in rates:
            assert len(bc.figure_values(r, rate, "p95_ms")) == 3, (r["release"], rate)


def test_the_tables_are_the_data(releases):
    assert (OUT / bc.TABLE_FILE).read_text() == bc.comparison_markdown(releases)
