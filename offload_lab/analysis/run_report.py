"""The report of one run: charts, timelines, summary.md, summary.csv and index.html, all from
the run folder; and what every report returns (ReportResult). offload_lab.analysis.report picks
the report a folder needs and compares two runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .charts import write_charts
from .html import HtmlReport, write_html
from .load import LoadedStep, Run, load_run
from .metrics import LOADGEN_SATURATED_PCT, StepMetrics, aggregate_points, run_metrics
from .run_header import run_header
from .series import Series, build_series
from .summary import definitions, report_tables, summary_md, write_csv
from .table_model import Table
from .tables import loadgen_notes
from .terminal import terminal_summary
from .timeline import plot_step_timeline


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


def flag_warnings(metrics: list[StepMetrics]) -> list[str]:
    """One line per step the tables mark with ⚠: the load generator, not the server, was the
    limit there, so that step's figures describe the client."""
    lines = []
    for m in metrics:
        if not m.loadgen_limited:
            continue
        cpu = "n/a" if m.loadgen_cpu_pct is None else f"{m.loadgen_cpu_pct:.0f}%"
        busy = "n/a" if m.busy_vus is None else f"{m.busy_vus:.0f}"
        reason = (
            f"loadgen CPU {cpu} (over {LOADGEN_SATURATED_PCT:.0f}%)"
            if m.loadgen_flag == "saturated"
            else f"{m.dropped or 0:,} iterations dropped, {busy} of {m.max_vus} VUs busy, loadgen CPU {cpu}"
        )
        lines.append(f"{m.file} ({m.mode} {m.rate:g}/s): ⚠ {m.loadgen_flag}: {reason}")
    return lines


def step_metrics(run: Run) -> list[StepMetrics]:
    metrics = run_metrics(run.steps, run.path)
    run.warnings += [f"{m.file}: {m.samples_check}" for m in metrics if m.samples_check]
    run.warnings += flag_warnings(metrics)
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


def _timeline_title(step: LoadedStep) -> str:
    label = f" [{step.label}]" if step.label != step.mode else ""
    return f"{Path(step.file).stem}: {step.mode}{label} at {step.rate:g}/s, repeat {step.repeat}"


def _gateway_sections(run: Run) -> list[tuple[str, list[tuple[str, str]]]]:
    """The effective gateway settings of each series, as the steps recorded them."""
    by_label: dict[str, dict[str, str]] = {}
    for step in run.steps:
        by_label.setdefault(step.label, {k: str(v) for k, v in step.gateway.items()})
    return [(f"Effective gateway settings: {label}", sorted(s.items())) for label, s in by_label.items() if s]


def write_report_html(
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
    spec = run.meta.spec if run is not None else None
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


def make_run_report(
    run_dir: str | Path, out_dir: str | Path | None = None, charts: bool = True
) -> ReportResult:
    """Write RUN_DIR/report/ (or out_dir). Raises LoadError if the folder holds nothing usable."""
    run = load_run(run_dir)
    metrics = step_metrics(run)
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
    html = write_report_html(
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
