"""A capacity suite's block for a page (analysis/capacity_block.py): the SLO and the commits and
days the subjects ran at, read from their folders, then one row per subject, highest capacity
first, each linked to its own capacity.md under the given base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from record_testlib import run_file

from offload_lab.analysis import capacity_block

SUITE = {
    "name": "t",
    "slo": {"p95_ms": 20, "max_error_pct": 0.1, "dropped": 0},
    "source": "k6/capacity/t.yml",
    "subjects": [{"name": n, "duration_s": 10} for n in ("sync", "noop", "kombu_pool", "never_ran")],
}


def subject(folder: Path, name: str, mode: str, capacity: int, failure: int, bottleneck: str | None,
            commit: str = "aaaaaaa1", rejudged: bool = True, spread: dict | None = None) -> None:  # fmt: skip
    d = folder / name
    d.mkdir(parents=True)
    run = run_file(run_id=name, spec={"modes": [mode]}, git_commit=commit, started_at="2026-11-27T22:00:00Z")
    (d / "run.json").write_text(json.dumps(run))
    first_failure = {"rate": failure, "reasons": [f"p95 25.0 ms over the SLO 20 ms at {failure}/s"],
                     "bottleneck": bottleneck, "evidence": [f"evidence of {name}"]}  # fmt: skip
    result = {
        "capacity_rps": capacity,
        "valid": True,
        "first_failure": first_failure,
        "probes": [{"rate": capacity, "passed": True, "figures": {"p95_ms": 10.0}}] * (3 if spread else 1),
        **({"rejudged": {"verdicts_changed": []}} if rejudged else {}),
        **({"spread": spread} if spread else {}),
    }
    (d / "capacity.json").write_text(json.dumps(result))


@pytest.fixture
def suite_dir(tmp_path) -> Path:
    folder = tmp_path / "suite"
    subject(folder, "sync", "sync", 93, 96, None)
    subject(folder, "noop", "noop", 400, 420, "lab-gateway CPU")
    subject(folder, "kombu_pool", "async", 125, 131, "CPU 0 (shared, contended)", commit="bbbbbbb2")
    rows = [{"subject": n} for n in ("sync", "noop", "kombu_pool", "never_ran")]
    (folder / "capacity.json").write_text(
        json.dumps({"kind": "capacity-suite", "suite": SUITE, "subjects": rows})
    )
    return folder


def test_rows_highest_capacity_first_each_linked_under_the_base(suite_dir):
    lines = capacity_block.readme_block(suite_dir, "/docs/results/t").splitlines()
    rows = [line for line in lines if line.startswith("| [")]
    assert [row.split("]")[0] for row in rows] == ["| [noop", "| [kombu_pool", "| [sync"]
    noop = rows[0].split(" | ")
    assert noop[0] == "| [noop](/docs/results/t/noop/capacity.md)"
    assert noop[1:8] == [
        "400/s",
        "unknown (not repeated)",
        "1",
        "100%",
        "420/s",
        "p95 25.0 ms over the SLO 20 ms at 420/s",
        "lab-gateway CPU",
    ]
    assert rows[2].split(" | ")[7] == "not identified"  # sync: the judge named nothing
    # last, and no link to a folder it lacks
    assert lines[-1] == "| never_ran | not run |  |  |  | none |  |  |  |"


def test_the_intro_names_the_slo_and_each_commit_with_its_subjects(suite_dir):
    intro = capacity_block.readme_block(suite_dir, "/docs/results/t").splitlines()[0]
    assert "p95 <= 20 ms" in intro and "errors <= 0.1 %" in intro and "10 s per probe" in intro
    assert "commit aaaaaaa (sync, noop), bbbbbbb (kombu_pool), 2026-11-27" in intro
    assert "judged again with the final rules (`fab capacity --rejudge`): none changed" in intro
    assert "(/docs/results/t/capacity.md)" in intro


def test_one_commit_for_all_and_a_verdict_not_rejudged(tmp_path):
    folder = tmp_path / "suite"
    subject(folder, "sync", "sync", 93, 96, None)
    subject(folder, "noop", "noop", 400, 420, None, rejudged=False)
    text = capacity_block.provenance(folder, ["sync", "noop"])
    assert text == "commit aaaaaaa (every subject), 2026-11-27"


def test_repeated_boundaries_give_each_capacity_its_spread_and_its_neighbours(tmp_path):
    folder = tmp_path / "suite"
    subject(folder, "noop", "noop", 400, 420, None)
    spread = {"boundary_repeats": 3, "repeated": True, "flipped_rates": [131], "highest_passing_rps": 131}
    subject(folder, "kombu_pool", "async", 125, 137, None, spread=spread)
    spread = {"boundary_repeats": 3, "repeated": True, "flipped_rates": [], "highest_passing_rps": 120}
    subject(folder, "pipelined", "async", 120, 125, None, spread=spread)
    rows = [{"subject": n} for n in ("noop", "kombu_pool", "pipelined")]
    (folder / "capacity.json").write_text(json.dumps({"suite": SUITE, "subjects": rows}))
    lines = capacity_block.readme_block(folder, "/r").splitlines()
    assert "probed 3 times each, interleaved" in lines[0]
    cells = {line.split("]")[0]: line.split(" | ") for line in lines if line.startswith("| [")}
    kombu, pipelined = cells["| [kombu_pool"], cells["| [pipelined"]
    assert kombu[1:4] == ["125/s", "up to 131/s (flipped at 131/s; 3 repeats)", "2"]
    # pipelined never passed 125/s, kombu_pool's capacity: the two are told apart
    assert pipelined[1:4] == ["120/s", "none (3 repeats)", "3"]
