"""A capacity suite's table for a page (`fab capacity --suite`, published in docs/results/capacity
and docs/results/capacity-saturation): the SLO the suite held, the commit and day each subject
ran at, then one row per subject, highest capacity first, with what its first failing probe
shows. The rows are analysis.capacity_table's, rebuilt from the subjects' folders.

The blocks `capacity` and `capacity-saturation` of offload_lab.analysis.generated_blocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..records import CAPACITY_FILE, RUN_FILE, RecordError, RunRecord, read_run
from .capacity_table import build_table, capacity_text, rank_text, spread_text
from .load import LoadError
from .table_model import md_table

HEADERS = [
    "subject",
    "capacity",
    "spread",
    "rank",
    "of no-op",
    "first failure",
    "why it failed",
    "bottleneck",
    "evidence",
]


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LoadError(f"{path}: unreadable ({exc})") from exc


def _run(folder: Path) -> RunRecord:
    try:
        return read_run(folder)
    except RecordError as exc:
        raise LoadError(f"{folder / RUN_FILE}: {exc}") from exc


def _by_capacity(row: dict[str, Any]) -> tuple[bool, float]:
    rps = row.get("capacity_rps")
    return (not (row.get("valid") and rps is not None), -(rps or 0))


def provenance(folder: Path, names: list[str]) -> str:
    """The commits the subjects ran at (each subject's run.json), the days they started, and
    whether every verdict was judged again (`fab capacity --rejudge`); a subject that never ran
    has no run.json and is left out."""
    runs = {n: _run(folder / n) for n in names if (folder / n / RUN_FILE).is_file()}
    if not runs:
        return "no subject ran"
    by_commit: dict[str, list[str]] = {}
    for name, run in runs.items():
        by_commit.setdefault(str(run.git_commit or "?")[:7], []).append(name)
    commits = []
    for commit, subjects in sorted(by_commit.items(), key=lambda item: -len(item[1])):
        if len(subjects) == len(runs):
            who = "every subject"
        elif len(subjects) <= 2:
            who = ", ".join(subjects)
        else:
            who = f"{len(subjects)} subjects"
        commits.append(f"{commit} ({who})")
    days = sorted({str(run.started_at or "?")[:10] for run in runs.values()})
    text = f"commit {', '.join(commits)}, {days[0] if len(days) == 1 else f'{days[0]} to {days[-1]}'}"
    results = [_read(folder / n / CAPACITY_FILE) for n in runs]
    if not all("rejudged" in r for r in results):
        return text
    changed = sum(len(r["rejudged"].get("verdicts_changed") or []) for r in results)
    return text + (
        ", every verdict judged again with the final rules (`fab capacity --rejudge`): "
        + (f"{changed} changed" if changed else "none changed")
    )


def _evidence(row: dict[str, Any]) -> str:
    return "; ".join(row.get("evidence") or [])


def rows(table: dict[str, Any], link_base: str) -> list[list[str]]:
    out = []
    for r in sorted(table["subjects"], key=_by_capacity):
        share = r.get("share_of_noop")
        failure = r.get("first_failure_rps")
        at = r.get("bottleneck_rps")
        bottleneck = r.get("bottleneck") or ("not identified" if failure is not None else "")
        if at is not None and failure is not None and at != failure:
            bottleneck += f" (at {at:,}/s)"
        out.append(
            [
                r["subject"]
                if r.get("status") == "not run"
                else f"[{r['subject']}]({link_base}/{r['report']})",
                capacity_text(r),
                spread_text(r),
                rank_text(r),
                "" if share is None else f"{share:.0%}",
                "none" if failure is None else f"{failure:,}/s",
                "; ".join(r.get("failure_reasons") or []),
                bottleneck,
                _evidence(r),
            ]
        )
    return out


def readme_block(folder: Path, link_base: str) -> str:
    """The block for the suite in `folder`, its links under `link_base` (the folder as the
    repository's root sees it: /docs/results/NAME)."""
    data = _read(folder / CAPACITY_FILE)
    suite = data.get("suite") or {}
    names = [row["subject"] for row in data.get("subjects") or []]
    table = build_table(folder, names)
    slo = suite.get("slo") or {}
    durations = sorted({s.get("duration_s") for s in suite.get("subjects") or [] if s.get("duration_s")})
    probe = f", {'/'.join(f'{d:g}' for d in durations)} s per probe" if durations else ""
    repeats = sorted({r["boundary_repeats"] for r in table["subjects"] if r.get("repeated")})
    if repeats:
        probe += (
            f", the highest passing and the lowest failing rate probed {'/'.join(map(str, repeats))}"
            " times each, interleaved: the capacity passed in every repeat, 'spread' is how high a"
            " rate passed in some repeat, 'within spread of' names a neighbour its spread does not"
            " tell apart"
        )
    intro = (
        f"Suite `{suite.get('name')}` ({suite.get('source')}): the highest rate with p95 <= "
        f"{slo.get('p95_ms')} ms (sync: above its work time), errors <= {slo.get('max_error_pct')} % "
        f"and nothing dropped; one search per subject{probe}; {provenance(folder, names)} "
        f"([table and data]({link_base}/capacity.md)):"
    )
    return "\n".join([intro, "", md_table(HEADERS, rows(table, link_base), right_from=len(HEADERS))])
