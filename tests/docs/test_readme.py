"""The README stays a page a newcomer reads in minutes, and its results table reaches every
publication: each folder under docs/results is linked as a publication's raw data, each page in
docs/publications is linked as a publication's page, and each page names the commit and the
day of every run behind it, as that run's own record says (run.json, or a benchmark's
bench.json)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
RESULTS = REPO / "docs" / "results"
PUBLICATIONS = REPO / "docs" / "publications"
MAX_LINES = 220
HEADER = ["publication", "the question", "its page", "its report", "its raw data"]
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def results_table(markdown: str) -> dict[str, dict[str, list[str]]]:
    """publication -> column -> the link targets in that cell, from the first table under
    "## Results"."""
    section = markdown.split("\n## Results\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(section) if line.startswith("|"))
    rows = list(itertools.takewhile(lambda line: line.startswith("|"), section[start:]))
    head = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert head == HEADER, head
    table = {}
    for row in rows[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        table[cells[0]] = {column: _LINK.findall(cell) for column, cell in zip(head, cells, strict=True)}
    return table


def run_records(folder: Path) -> list[tuple[str, str]]:
    """(commit, day) of every run under a published folder."""
    found = []
    for path in sorted(folder.rglob("run.json")):
        meta = json.loads(path.read_text())
        found.append((meta["git_commit"], meta["started_at"]))
    for path in sorted(folder.rglob("bench.json")):
        settings = json.loads(path.read_text())["settings"]
        found.append((settings["git_commit"], settings["started"]))
    return [(commit[:7], started[:10]) for commit, started in found]


TABLE = results_table(README.read_text())


def test_the_readme_reads_in_minutes():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_LINES, (
        f"README.md has {lines} lines: move the long parts to docs/ (at most {MAX_LINES})"
    )


def test_the_table_on_a_handmade_readme():
    markdown = "\n".join(
        [
            "# x",
            "## Results",
            "| " + " | ".join(HEADER) + " |",
            "|---|---|---|---|---|",
            "| seed | why? | [seed](docs/publications/seed.md) | [r](docs/results/seed/report/index.html) "
            "| [a](docs/results/seed), [b](docs/results/bench) |",
            "",
            "| a later | table |",
            "## Next",
            "| not | this |",
        ]
    )
    assert results_table(markdown) == {
        "seed": {
            "publication": [],
            "the question": [],
            "its page": ["docs/publications/seed.md"],
            "its report": ["docs/results/seed/report/index.html"],
            "its raw data": ["docs/results/seed", "docs/results/bench"],
        }
    }


def test_every_published_folder_is_a_publications_raw_data():
    """A publication's raw data may be a run inside another's folder (the cluster profile's page
    is the broker comparison's Debian 13 cluster run), never a second copy of it."""
    linked = {target.rstrip("/") for row in TABLE.values() for target in row["its raw data"]}
    published = {f"docs/results/{folder.name}" for folder in RESULTS.iterdir() if folder.is_dir()}
    linked_tops = {"/".join(target.split("/")[:3]) for target in linked}
    assert published - linked_tops == set(), "published but not in the README's results table"
    not_folders = {t for t in linked if not t.startswith("docs/results/") or not (REPO / t).is_dir()}
    assert not_folders == set(), "raw data that is not a folder of docs/results"


def test_every_publication_page_is_in_the_table():
    linked = {target for row in TABLE.values() for target in row["its page"]}
    pages = {f"docs/publications/{page.name}" for page in PUBLICATIONS.glob("*.md")}
    assert linked == pages


@pytest.mark.parametrize("name", sorted(TABLE))
def test_each_page_names_the_commit_and_day_of_its_runs(name):
    row = TABLE[name]
    (page,) = row["its page"]
    text = (REPO / page).read_text()
    records = [record for folder in row["its raw data"] for record in run_records(REPO / folder)]
    assert records, f"{name}: no run.json or bench.json under its raw data"
    missing = sorted(
        {f"{commit} ({day})" for commit, day in records if commit not in text or day not in text}
    )
    assert not missing, f"{page} does not name the commit and day of these runs: {missing}"
