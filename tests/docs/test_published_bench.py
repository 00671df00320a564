"""The published publisher benchmark (docs/results/bench): every table, and the blocks its page quotes,
are what its committed raw k6 summaries give today; it ran from a clean commit, in both modes,
with the repeats and references its ratios need; and the default publisher is the one it backs."""

from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path

import pytest
from offload_gateway.settings_table import SETTINGS

from offload_lab.analysis import publisher_bench as pb

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "docs" / "results" / "bench"


def tracked() -> set[str]:
    out = subprocess.run(["git", "ls-files", "docs/results/bench"], cwd=REPO, capture_output=True, text=True)
    return set(out.stdout.split())


@pytest.fixture(scope="module", params=list(pb.MODES))
def folder(request) -> Path:
    return BENCH / request.param


def test_each_mode_is_published_with_every_raw_summary(folder):
    files = tracked()
    data = json.loads((folder / pb.BENCH_FILE).read_text())
    assert f"docs/results/bench/{folder.name}/{pb.BENCH_FILE}" in files
    assert data["mode"] == folder.name and data["steps"]
    for step in data["steps"]:
        assert f"docs/results/bench/{folder.name}/{step['summary']}" in files, step


def test_it_ran_from_a_clean_commit_with_repeats_and_both_references(folder):
    bench = pb.load_bench(folder)
    assert bench.settings["git_dirty"] is False and len(bench.settings["git_commit"]) == 40
    assert len(bench.repeats) >= 3
    assert {pb.NO_CONFIRM, pb.NO_OP, "pipelined", "kombu_pool", "celery", "dramatiq"} <= set(bench.subjects)
    for subject in bench.subjects:  # every subject ran at the lowest rate of every repeat
        assert len(bench.p95_at(subject, min(bench.settings["rates"]))) == len(bench.repeats), subject


def test_the_table_is_what_the_raw_summaries_give(folder):
    rebuilt = pb.table_markdown(pb.load_bench(folder))
    assert (folder / pb.TABLE_FILE).read_text() == rebuilt, (
        f"{folder / pb.TABLE_FILE} is stale: rebuild it from {pb.BENCH_FILE}"
    )


def test_the_default_publisher_is_the_fastest_confirmed_one_in_both_modes():
    """The default is the confirmed publisher with the highest capacity, as a ratio to kombu_pool
    without confirms in the same repeat (median of the repeats), publishing alone and in the
    whole system; and it is above kombu_pool with confirms, the earlier default."""
    default = next(s.default for s in SETTINGS if s.name == "PUBLISHER")
    for mode in pb.MODES:
        bench = pb.load_bench(BENCH / mode)
        confirmed = [s for s in bench.subjects if s not in (pb.NO_CONFIRM, pb.NO_OP)]
        median = {s: statistics.median(bench.ratios(s, pb.NO_CONFIRM)[0]) for s in confirmed}
        assert median[default] == max(median.values()), (mode, median)
        assert median[default] > median["kombu_pool"], (mode, median)


@pytest.mark.parametrize("mode", list(pb.MODES))
def test_kombu_pool_is_no_slower_than_celery_as_its_page_says(mode):
    """docs/publications/publishers.md's reading of the kombu_pool/Celery question: in every
    repeat of both modes, kombu_pool's capacity is at least Celery's and its p95 at 400/s is
    lower."""
    bench = pb.load_bench(BENCH / mode)

    def p95_at_400(subject: str) -> dict[int, float]:
        return {s.repeat: s.figures.p95_ms for s in bench.steps if s.subject == subject and s.rate == 400}

    kombu, celery = p95_at_400("kombu_pool"), p95_at_400("celery")
    for repeat in bench.repeats:
        assert bench.capacity("kombu_pool", repeat).rate >= bench.capacity("celery", repeat).rate, repeat
        assert kombu[repeat] < celery[repeat], (repeat, kombu, celery)
