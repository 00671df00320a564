"""Make the report of one run, or the comparison of two."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from analysis.charts import RUN_LINESTYLES, Series, build_series, write_charts
from analysis.load import Run, load_run
from analysis.metrics import StepMetrics, run_metrics
from analysis.tables import compare_md, summary_md, tables_text, write_csv


@dataclass
class ReportResult:
    out_dir: Path
    charts: list[Path]
    warnings: list[str]
    tables: str  # the tables part of summary.md (printed by the CLI)
    summary_md: Path
    summary_csv: Path
    chart_notes: list[str] = field(default_factory=list)
    usable_steps: int = 0
    charts_requested: bool = True

    @property
    def ok(self) -> bool:
        """Something usable was found (and charted, unless charts were turned off)."""
        return self.usable_steps > 0 and (bool(self.charts) or not self.charts_requested)


def _write(
    out_dir: Path,
    series: list[Series],
    run_ids: dict[int, str],
    subtitle: str,
    md_maker,
    warnings: list[str],
    charts: bool,
) -> ReportResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    if charts:
        written, notes = write_charts(series, out_dir, subtitle=subtitle)
    else:
        written, notes = [], ["charts not drawn (--no-charts)"]
    md_path = out_dir / "summary.md"
    csv_path = out_dir / "summary.csv"
    md_path.write_text(md_maker(written, notes), encoding="utf-8")
    write_csv(csv_path, series, run_ids)
    return ReportResult(
        out_dir=out_dir,
        charts=written,
        warnings=warnings,
        tables=tables_text(series),
        summary_md=md_path,
        summary_csv=csv_path,
        chart_notes=notes,
        usable_steps=sum(len(s.points) for s in series),
        charts_requested=charts,
    )


def make_report(run_dir: str | Path, out_dir: str | Path | None = None, charts: bool = True) -> ReportResult:
    """Write RUN_DIR/report/ (or out_dir). Raises LoadError if the folder holds nothing usable."""
    run = load_run(run_dir)
    metrics = run_metrics(run.steps)
    if not metrics:
        run.warnings.append("no usable step in this run: nothing to chart")
    series = build_series(metrics)
    out = Path(out_dir) if out_dir else run.path / "report"
    run_ids = {id(s): run.run_id for s in series}
    return _write(
        out,
        series,
        run_ids,
        subtitle=f"run {run.run_id}",
        md_maker=lambda charts, notes: summary_md(run, metrics, series, charts, notes, run.warnings),
        warnings=run.warnings,
        charts=charts,
    )


def default_run_labels(runs: list[Run]) -> list[str]:
    """Spec names when they tell the runs apart (short), else run ids, else A/B prefixes."""
    specs = [str(r.meta.get("spec_name") or "") for r in runs]
    if all(specs) and len(set(specs)) == len(specs):
        return specs
    ids = [r.run_id for r in runs]
    if len(set(ids)) == len(ids):
        return ids
    return [f"{chr(ord('A') + i)} {rid}" for i, rid in enumerate(ids)]


def compare_runs(
    run_a: str | Path,
    run_b: str | Path,
    out_dir: str | Path | None = None,
    labels: list[str] | None = None,
    charts: bool = True,
) -> ReportResult:
    """Overlay two runs: series "<run label>: <step label>", run A solid, run B dashed."""
    runs: list[tuple[Run, list[StepMetrics]]] = []
    for path in (run_a, run_b):
        run = load_run(path)
        runs.append((run, run_metrics(run.steps)))
    if not labels:
        labels = default_run_labels([r for r, _ in runs])
    for (run, _), label in zip(runs, labels, strict=True):
        run.display_label = label
    series: list[Series] = []
    run_ids: dict[int, str] = {}
    warnings: list[str] = []
    for (run, metrics), label, style in zip(runs, labels, RUN_LINESTYLES, strict=False):
        for s in build_series(metrics, prefix=label, linestyle=style):
            series.append(s)
            run_ids[id(s)] = run.run_id
        warnings += [f"{label}: {w}" for w in run.warnings]
        if not metrics:
            warnings.append(f"{label}: no usable step in this run")
    run_a_obj, run_b_obj = runs[0][0], runs[1][0]
    out = Path(out_dir) if out_dir else run_a_obj.path / "report" / f"compare-{run_b_obj.run_id}"
    return _write(
        out,
        series,
        run_ids,
        subtitle=f"{labels[0]} = {run_a_obj.run_id} (solid) vs {labels[1]} = {run_b_obj.run_id} (dashed)",
        md_maker=lambda charts, notes: compare_md(runs, series, charts, notes, warnings),
        warnings=warnings,
        charts=charts,
    )
