"""Make the report of one run, or the comparison of two: charts, timelines, summary.md,
summary.csv and index.html, all from the run folder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from analysis.capacity_table import is_suite_folder
from analysis.charts import write_charts
from analysis.compare import change_tables, comparison_warnings, run_labels, runs_list
from analysis.html import HtmlReport, write_html
from analysis.load import Run, StepRecord, load_run
from analysis.metrics import StepMetrics, aggregate_points, run_metrics
from analysis.run_header import run_header
from analysis.series import RUN_STYLES, Series, build_series, give_runs_colors
from analysis.summary import compare_md, definitions, report_tables, summary_md, write_csv
from analysis.table_model import Table
from analysis.tables import loadgen_notes
from analysis.terminal import terminal_summary
from analysis.timeline import plot_step_timeline


@dataclass
class ReportResult:
    out_dir: Path
    charts: list[Path]
    warnings: list[str]
    tables: str  # the key figures per point, sized for a terminal (printed by the CLI)
    summary_md: Path
    summary_csv: Path
    html: Path | None = None
    timelines: list[Path] = field(default_factory=list)
    chart_notes: list[str] = field(default_factory=list)
    usable_steps: int = 0
    charts_requested: bool = True

    @property
    def ok(self) -> bool:
        """Something usable was found (and charted, unless charts were turned off)."""
        return self.usable_steps > 0 and (bool(self.charts) or not self.charts_requested)


def _metrics(run: Run) -> list[StepMetrics]:
    metrics = run_metrics(run.steps, run.path)
    run.warnings += [f"{m.file}: {m.samples_check}" for m in metrics if m.samples_check]
    if not metrics:
        run.warnings.append("no usable step in this run: nothing to chart")
    return metrics


def _timelines(run: Run, out_dir: Path) -> list[Path]:
    written = []
    for step in run.steps:
        stem = Path(step.file).stem
        path = out_dir / "timelines" / f"{stem}.png"
        if plot_step_timeline(step, run.path, path, _timeline_title(step)):
            written.append(path)
    return written


def _timeline_title(step: StepRecord) -> str:
    label = f" [{step.label}]" if step.label != step.mode else ""
    return f"{Path(step.file).stem}: {step.mode}{label} at {step.rate:g}/s, repeat {step.repeat}"


def _gateway_sections(run: Run) -> list[tuple[str, list[tuple[str, str]]]]:
    """The effective gateway settings of each series, as the steps recorded them."""
    by_label: dict[str, dict[str, str]] = {}
    for step in run.steps:
        by_label.setdefault(step.label, {k: str(v) for k, v in step.gateway.items()})
    return [(f"Effective gateway settings: {label}", sorted(s.items())) for label, s in by_label.items() if s]


def _html(
    path: Path,
    title: str,
    meta: list[tuple[str, str]],
    series: Sequence[Series],
    charts: list[Path],
    notes: list[str],
    warnings: list[str],
    *,
    run: Run | None = None,
    timelines: Sequence[Path] = (),
    subtitle: str = "",
    first_tables: Sequence[Table] = (),
) -> Path:
    spec = run.meta.get("spec") if run is not None else None
    report = HtmlReport(
        title=title,
        subtitle=subtitle,
        meta=meta,
        sections=_gateway_sections(run) if run is not None else [],
        spec_text=yaml.safe_dump(spec, sort_keys=False) if isinstance(spec, dict) else "",
        tables=[*first_tables, *report_tables(series, run)],
        charts=charts,
        timelines=[(t.stem, t) for t in timelines],
        notes=loadgen_notes(series) + [definitions()] + notes,
        warnings=warnings,
    )
    return write_html(report, path)


def make_report(run_dir: str | Path, out_dir: str | Path | None = None, charts: bool = True) -> ReportResult:
    """Write RUN_DIR/report/ (or out_dir). Raises LoadError if the folder holds nothing usable."""
    if is_suite_folder(Path(run_dir)):  # `fab capacity --suite`: a folder of capacity runs
        from analysis.capacity_report import make_capacity_report

        return make_capacity_report(run_dir, out_dir, charts)
    run = load_run(run_dir)
    metrics = _metrics(run)
    series = build_series(aggregate_points(metrics), unreadable=run.unreadable)
    out = Path(out_dir) if out_dir else run.path / "report"
    out.mkdir(parents=True, exist_ok=True)
    subtitle = f"run {run.run_id}"
    if charts:
        written, notes = write_charts(series, out, subtitle=subtitle)
        timelines = _timelines(run, out)
    else:
        written, notes, timelines = [], ["charts not drawn (--no-charts)"], []
    md_path, csv_path = out / "summary.md", out / "summary.csv"
    md_path.write_text(
        summary_md(run, metrics, series, written, notes, run.warnings, timelines), encoding="utf-8"
    )
    write_csv(csv_path, series, {id(s): run.run_id for s in series})
    html = _html(
        out / "index.html",
        f"offload-lab report: {run.run_id}",
        run_header(run, metrics),
        series,
        written,
        notes,
        run.warnings,
        run=run,
        timelines=timelines,
    )
    return ReportResult(
        out_dir=out,
        charts=written,
        warnings=run.warnings,
        tables=terminal_summary(series),
        summary_md=md_path,
        summary_csv=csv_path,
        html=html,
        timelines=timelines,
        chart_notes=notes,
        usable_steps=len(metrics),
        charts_requested=charts,
    )


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
        runs.append((run, _metrics(run)))
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
    html = _html(
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
