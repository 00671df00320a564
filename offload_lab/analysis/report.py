"""The report a folder needs (a run's, or a capacity suite's), or the comparison of two runs:
charts, summary.md, summary.csv and index.html, all from the run folders."""

from __future__ import annotations

from pathlib import Path

from .capacity_report import make_capacity_report
from .capacity_table import is_suite_folder
from .charts import write_charts
from .compare import change_tables, comparison_warnings, run_labels, runs_list
from .load import Run, load_run
from .metrics import StepMetrics, aggregate_points
from .run_header import run_header
from .run_report import ReportResult, make_run_report, step_metrics, write_report_html
from .series import RUN_STYLES, Series, build_series, give_runs_colors
from .summary import compare_md, write_csv
from .terminal import terminal_summary


def make_report(
    run_dir: str | Path, out_dir: str | Path | None = None, charts: bool = True, subject_reports: bool = True
) -> ReportResult:
    """Write RUN_DIR/report/ (or out_dir). Raises LoadError if the folder holds nothing usable.
    subject_reports: a capacity suite's, whether each subject's own report is written too."""
    if is_suite_folder(Path(run_dir)):  # `fab capacity --suite`: a folder of capacity runs
        return make_capacity_report(run_dir, out_dir, charts, subject_reports)
    return make_run_report(run_dir, out_dir, charts)


def compare_runs(
    run_a: str | Path,
    run_b: str | Path,
    out_dir: str | Path | None = None,
    labels: list[str] | None = None,
    charts: bool = True,
) -> ReportResult:
    """Overlay two runs (each point the median of its repeats): series "<run label>: <step
    label>", each run with its own marker, line style and colours; the change from A to B per
    point; warnings when the runs differ in more than one setting or are one run."""
    runs: list[tuple[Run, list[StepMetrics]]] = []
    for path in (run_a, run_b):
        run = load_run(path)
        runs.append((run, step_metrics(run)))
    (first, _), (second, _) = runs
    labels = list(labels) if labels else run_labels(first, second)
    per_run: list[list[Series]] = []
    warnings: list[str] = []
    for (run, metrics), label, style in zip(runs, labels, RUN_STYLES, strict=True):
        run.display_label = label
        per_run.append(build_series(aggregate_points(metrics), label, style, run.unreadable))
        warnings += [f"{label}: {w}" for w in run.warnings]
    give_runs_colors(*per_run)
    series = per_run[0] + per_run[1]
    run_ids = {id(s): run.run_id for (run, _), group in zip(runs, per_run, strict=True) for s in group}
    compared = comparison_warnings(first, second, *per_run)
    warnings = compared + warnings
    changes = change_tables(*per_run, labels)
    out = Path(out_dir) if out_dir else first.path / "report" / f"compare-{second.run_id}"
    out.mkdir(parents=True, exist_ok=True)
    subtitle = f"A = {labels[0]} (solid, filled circles) vs B = {labels[1]} (dashed, hollow squares)"
    if charts:
        written, notes = write_charts(series, out, subtitle=subtitle)
    else:
        written, notes = [], ["charts not drawn (--no-charts)"]
    listed = runs_list([first, second], labels)
    md_path, csv_path = out / "summary.md", out / "summary.csv"
    md_path.write_text(
        compare_md(runs, listed, compared, changes, series, written, notes, warnings), encoding="utf-8"
    )
    write_csv(csv_path, series, run_ids)
    meta = listed + [(f"{run.label}: {k}", v) for run, metrics in runs for k, v in run_header(run, metrics)]
    html = write_report_html(
        out / "index.html",
        f"offload-lab comparison: {labels[0]} vs {labels[1]}",
        meta,
        series,
        written,
        notes,
        warnings,
        subtitle=subtitle,
        first_tables=changes,
    )
    return ReportResult(
        out_dir=out,
        charts=written,
        warnings=warnings,
        tables=terminal_summary(series, listed),
        summary_md=md_path,
        summary_csv=csv_path,
        html=html,
        chart_notes=notes,
        usable_steps=sum(len(m) for _, m in runs),
        charts_requested=charts,
    )
