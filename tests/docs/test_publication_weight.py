"""The publications' weight: every republication adds its bytes to the repository's history for
good, so docs/results holds a budget. The raw figures that recompute every table stay (samples
and outcome records compressed); what is derived twice does not (a report page links its charts
beside it instead of holding a second copy of each)."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOTAL_BUDGET_MB = 85  # all of docs/results, tracked files (78 MB on 2026-12-06)
PUBLICATION_BUDGET_MB = 18  # one folder of docs/results (the largest, brokers: 15.5 MB)
PAGE_BUDGET_KB = 300  # one report/index.html without its charts (the largest: 75 KB)


def tracked_sizes() -> dict[str, int]:
    files = subprocess.run(
        ["git", "ls-files", "-z", "docs/results"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    return {f: (REPO / f).stat().st_size for f in files if f and (REPO / f).is_file()}


def test_docs_results_stays_within_its_budget():
    sizes = tracked_sizes()
    by_publication = Counter()
    for name, size in sizes.items():
        by_publication[name.split("/")[2]] += size
    heavy = {
        name: round(size / 1e6, 1)
        for name, size in by_publication.items()
        if size > PUBLICATION_BUDGET_MB * 1e6
    }
    assert not heavy, f"publications over {PUBLICATION_BUDGET_MB} MB: {heavy}"
    total = sum(sizes.values())
    assert total <= TOTAL_BUDGET_MB * 1e6, (
        f"docs/results holds {total / 1e6:.1f} MB (budget {TOTAL_BUDGET_MB})"
    )


def test_no_report_page_holds_its_charts_a_second_time():
    pages = {name: size for name, size in tracked_sizes().items() if name.endswith("/report/index.html")}
    assert pages
    heavy = {name: size // 1000 for name, size in pages.items() if size > PAGE_BUDGET_KB * 1000}
    assert not heavy, f"report pages over {PAGE_BUDGET_KB} KB (charts inlined?): {heavy}"
    for name in pages:
        assert "data:image/png" not in (REPO / name).read_text(encoding="utf-8"), name
