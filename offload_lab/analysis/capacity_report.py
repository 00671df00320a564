"""The report of a capacity suite run (`fab capacity --suite`): the table rebuilt from the
subjects' folders (offload_lab.analysis.capacity_table), the bar chart (offload_lab.analysis.capacity_chart),
report/summary.md, report/capacity.csv and report/index.html; and every subject's own report
(offload_lab.analysis.run_report: its probes as steps, timelines) in <subject>/report/, unless
subject_reports is off (a publication: the suite's warnings still list every subject's flags)."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import Any

from ..records import CAPACITY_FILE, RUN_FILE, RecordError, SuiteRecord, read_suite
from .capacity_chart import write_capacity_chart
from .capacity_table import build_table, capacity_table, capacity_text, spread_text, table_intro
from .html import HtmlReport, write_html
from .load import LoadError
from .run_report import ReportResult, make_run_report
from .table_model import md_table

NO_SUBJECT_REPORTS = (
    "Each subject's own report (its probes as steps, with timelines) is not kept here: "
    "`python -m offload_lab.analysis SUITE_DIR/SUBJECT` draws it from the subject's folder."
)

CSV_COLUMNS = (
    "subject",
    "mode",
    "settings",
    "status",
    "capacity_rps",
    "valid",
    "no_failure",
    "boundary_repeats",
    "highest_passing_rps",
    "flipped_rates",
    "rank",
    "within_spread_of",
    "share_of_noop",
    "p95_at_capacity_ms",
    "first_failure_rps",
    "failure_reasons",
    "bottleneck",
    "bottleneck_rps",
    "evidence",
    "probes",
    "folder",
)


def stale_warning(record: SuiteRecord, rebuilt: dict[str, Any]) -> list[str]:
    if record.subjects == rebuilt["subjects"] and record.noop_capacity_rps == rebuilt["noop_capacity_rps"]:
        return []
    return [
        "capacity.json's table is not what the subjects' folders give today: the report shows the "
        "table rebuilt from them (`fab capacity` rewrites capacity.json after every subject)"
    ]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for r in rows:
            values = [r.get(c) for c in CSV_COLUMNS]
            w.writerow(
                ["; ".join(map(str, v)) if isinstance(v, list) else ("" if v is None else v) for v in values]
            )
    return path


def terminal_lines(rows: list[dict[str, Any]]) -> str:
    width = max((len(r["subject"]) for r in rows), default=7) + 2
    room = max((len(capacity_text(r)) for r in rows), default=8) + 2
    spread_room = max([len("spread"), *(len(spread_text(r)) for r in rows)]) + 2
    lines = [f"{'subject':<{width}}{'capacity':<{room}}{'spread':<{spread_room}}bottleneck"]
    for r in rows:
        cells = f"{r['subject']:<{width}}{capacity_text(r):<{room}}{spread_text(r):<{spread_room}}"
        lines.append(cells + (r.get("bottleneck") or "-"))
    return "\n".join(lines)


def _subject_reports(path: Path, out: Path, names: list[str], charts: bool, own_out: bool, keep: bool):
    """Each subject's report; (usable steps, warnings, relative links to their index.html). With
    keep off, each is built without charts where nothing keeps it, for its warnings alone."""
    usable, warnings, links = 0, [], []
    for name in names:
        if not (path / name / RUN_FILE).is_file():
            continue
        try:
            if keep:
                result = make_run_report(path / name, out / name if own_out else None, charts=charts)
            else:
                with tempfile.TemporaryDirectory() as scratch:
                    result = make_run_report(path / name, scratch, charts=False)
        except LoadError as exc:
            warnings.append(f"{name}: {exc}")
            continue
        usable += result.usable_steps
        warnings += [f"{name}: {w}" for w in result.warnings]
        if keep and result.html is not None:
            links.append((name, os.path.relpath(result.html, out)))
    return usable, warnings, links


def make_capacity_report(
    suite_dir: str | Path,
    out_dir: str | Path | None = None,
    charts: bool = True,
    subject_reports: bool = True,
):
    path = Path(suite_dir)
    try:
        record = read_suite(path)
    except RecordError as exc:
        raise LoadError(f"{path / CAPACITY_FILE}: {exc}") from exc
    suite = record.suite
    names = [r["subject"] for r in record.subjects]
    rebuilt = build_table(path, names)
    rows = rebuilt["subjects"]
    warnings = stale_warning(record, rebuilt)
    out = Path(out_dir) if out_dir else path / "report"
    out.mkdir(parents=True, exist_ok=True)
    run_id = record.run_id or path.name
    chart = (
        write_capacity_chart(rows, suite.get("slo") or {}, out / "capacity.png", f"run {run_id}")
        if charts
        else None
    )
    usable, subject_warnings, links = _subject_reports(
        path, out, names, charts, own_out=out_dir is not None, keep=subject_reports
    )
    warnings += subject_warnings
    intro = table_intro(suite, rebuilt)
    md = [f"# offload-lab capacity report: {run_id}", ""]
    md += [f"Suite {suite.get('name')} ({suite.get('source')}), status {record.status}.", ""]
    for line in intro:
        md += [line, ""]
    if chart is not None:
        md += [f"![capacity per subject]({chart.name})", ""]
    table = capacity_table(rebuilt, link_base=Path(os.path.relpath(path, out)).as_posix())
    md += [md_table(table.headers, table.rows, right_from=len(table.headers)), ""]
    if subject_reports:
        md += ["Each subject's report (its probes as steps, with timelines):", ""]
        md += [f"- {name}: [{link}]({link})" for name, link in links] + [""]
    else:
        md += [NO_SUBJECT_REPORTS, ""]
    if warnings:
        md += ["## Warnings", ""] + [f"- {w}" for w in warnings] + [""]
    subject_notes = [f"{name}: `{link}`" for name, link in links] if subject_reports else [NO_SUBJECT_REPORTS]
    summary_md = out / "summary.md"
    summary_md.write_text("\n".join(md), encoding="utf-8")
    csv_path = write_csv(out / "capacity.csv", rows)
    meta = [
        ("suite", f"{suite.get('name')} ({suite.get('source')})"),
        ("run id", str(run_id)),
        ("status", record.status),
        ("started / ended", f"{record.started_at} / {record.ended_at}"),
        ("subjects", ", ".join(names)),
    ]
    html = write_html(
        HtmlReport(
            title=f"offload-lab capacity report: {run_id}",
            meta=meta,
            tables=[capacity_table(rebuilt, links=False)],
            charts=[chart] if chart is not None else [],
            notes=intro + subject_notes,
            warnings=warnings,
        ),
        out / "index.html",
    )
    return ReportResult(
        out_dir=out,
        charts=[chart] if chart is not None else [],
        warnings=warnings,
        tables=terminal_lines(rows),
        summary_md=summary_md,
        summary_csv=csv_path,
        html=html,
        usable_steps=usable or sum(1 for r in rows if r.get("valid") is not None),
        charts_requested=charts,
    )
