"""What each of the sweep's own instruments costs (k6/sweeps/overhead.yml, overhead-sync.yml;
`make overhead`): per run folder, every series (all instruments off, each one on alone, all on)
against `all_off`, the same point measured interleaved and repeated.

    python -m offload_lab.analysis.overhead OUT

reads every run folder under OUT and writes OUT/overhead.json and OUT/overhead.md (the block
`overhead` of offload_lab.analysis.generated_blocks, in docs/publications/overhead.md). A figure is a median
[min-max] over the repeats; a series differs from all_off only when the ranges do not overlap
(else the table says "within noise": the repeats cannot tell the instrument's cost apart)."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from ..records import RUN_FILE
from .broker_comparison import differs
from .fmt import spread
from .load import LoadError, load_run
from .metrics import compute_metrics
from .run_header import calibration_line, instruments_line
from .server_cpu import servers_cpu

JSON_FILE, TABLE_FILE = "overhead.json", "overhead.md"
BASELINE, ALL_ON = "all_off", "all_on"
LATENCY = ("avg_ms", "p95_ms", "p99_ms")
FIGURES = (*LATENCY, "dropped_pct", "servers_cpu_pct", "servers_cpu_load_pct")
# the targets for all instruments on together (docs/measurement.md)
TARGET_P95_RATIO, TARGET_CPU_POINTS = 1.10, 3.0


def _step_row(step, run_dir: Path) -> dict[str, Any]:
    m = compute_metrics(step, run_dir)
    return {
        "file": step.file,
        "series": step.label,
        "repeat": step.repeat,
        "instruments": instruments_line(step.instruments),
        "avg_ms": m.lat_avg,
        "p95_ms": m.lat_p95,
        "p99_ms": m.lat_p99,
        "dropped_pct": None if m.drop_rate is None else round(100 * m.drop_rate, 3),
        "servers_cpu_pct": servers_cpu(step.hosts),
        "servers_cpu_load_pct": m.servers_cpu_load_pct,  # None with host sampling off
    }


def load_point(run_dir: Path) -> dict[str, Any]:
    """One overhead run: its point (mode, rate) and every step's figures."""
    run = load_run(run_dir)
    steps = [_step_row(s, run.path) for s in run.steps]
    first = run.steps[0] if run.steps else None
    return {
        "run": run_dir.name,
        "mode": first.mode if first else None,
        "rate": first.rate if first else None,
        "git_commit": run.meta.git_commit,
        "git_dirty": run.meta.git_dirty,
        "calibration": run.meta.calibration,
        "steps": steps,
    }


def values(point: dict[str, Any], series: str, figure: str) -> list[float]:
    return [s[figure] for s in point["steps"] if s["series"] == series and s.get(figure) is not None]


def effect_text(point: dict[str, Any], series: str, figure: str) -> str:
    """Against the run's first series (all_off, or the provisioned setting): a ratio of medians
    for latency, a difference for % figures."""
    mine, base = values(point, series, figure), values(point, baseline_of(point), figure)
    if not mine or not base:
        return "n/a"
    if figure in LATENCY:
        if statistics.median(base) == 0:
            return "n/a"
        text = f"x{statistics.median(mine) / statistics.median(base):.2f}"
    else:
        text = f"{statistics.median(mine) - statistics.median(base):+.1f} pts"
    return text if differs(mine, base) else f"{text} (within noise)"


def series_of(point: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(s["series"] for s in point["steps"]))


def baseline_of(point: dict[str, Any]) -> str:
    """What every series is read against: the run's first (overhead.yml: all_off)."""
    series = series_of(point)
    return series[0] if series else BASELINE


def point_table(point: dict[str, Any]) -> str:
    head = (
        "| series | instruments | avg ms | p95 ms | p99 ms | dropped % | servers' CPU % "
        "| CPU 0 during the load % |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for series in series_of(point):
        instruments = next(s["instruments"] for s in point["steps"] if s["series"] == series)
        cells = []
        for figure in FIGURES:
            cell = spread(values(point, series, figure), "{:.1f}" if figure != "dropped_pct" else "{:.2f}")
            effect = effect_text(point, series, figure)
            if series != baseline_of(point) and effect != "n/a":
                cell += f"<br>{effect}"
            cells.append(cell)
        lines.append(f"| {series} | {instruments} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_ratios(point: dict[str, Any], figure: str) -> list[float]:
    """all_on / all_off of each repeat that has both: interleaved, a repeat's two steps ran
    minutes apart, so a pair leaves out the drift between repeats."""
    by_repeat: dict[int, dict[str, float]] = {}
    for s in point["steps"]:
        if s["series"] in (ALL_ON, BASELINE) and s[figure] is not None:
            by_repeat.setdefault(s["repeat"], {})[s["series"]] = s[figure]
    return [
        pair[ALL_ON] / pair[BASELINE]
        for _, pair in sorted(by_repeat.items())
        if ALL_ON in pair and pair.get(BASELINE)
    ]


def target_text(point: dict[str, Any]) -> str:
    """All instruments on against all off, read against the targets."""
    if BASELINE not in series_of(point) or ALL_ON not in series_of(point):
        return f"each series against {baseline_of(point)}: see the table"
    p95_on, p95_off = values(point, ALL_ON, "p95_ms"), values(point, BASELINE, "p95_ms")
    cpu_on, cpu_off = values(point, ALL_ON, "servers_cpu_pct"), values(point, BASELINE, "servers_cpu_pct")
    if not (p95_on and p95_off and cpu_on and cpu_off) or statistics.median(p95_off) == 0:
        return "all on against all off: not measured in this run"
    ratio = statistics.median(p95_on) / statistics.median(p95_off)
    points = statistics.median(cpu_on) - statistics.median(cpu_off)
    p95_verdict = "met" if ratio <= TARGET_P95_RATIO else "missed"
    verdict = [
        f"p95 x{ratio:.2f} (target at most x{TARGET_P95_RATIO:.2f}: {p95_verdict}"
        + ("" if differs(p95_on, p95_off) else ", ranges overlap")
        + ")",
        f"servers' CPU {points:+.1f} points (target at most +{TARGET_CPU_POINTS:g}: "
        f"{'met' if points <= TARGET_CPU_POINTS else 'missed'})",
    ]
    pairs = paired_ratios(point, "p95_ms")
    if len(pairs) >= 2:
        above = sum(1 for r in pairs if r > TARGET_P95_RATIO)
        verdict.append(
            f"p95 repeat by repeat x{statistics.median(pairs):.2f} [{min(pairs):.2f}-{max(pairs):.2f}], "
            f"above x{TARGET_P95_RATIO:.2f} in {above} of {len(pairs)}"
        )
    return "all on against all off: " + "; ".join(verdict)


def _title(point: dict[str, Any]) -> str:
    """'async at 400/s'."""
    rate = f"{point['rate']:g}" if isinstance(point["rate"], int | float) else "?"
    return f"{point['mode']} at {rate}/s"


def overhead_markdown(points: list[dict[str, Any]]) -> str:
    out = [
        "# What the sweep's instruments cost",
        "",
        "Generated by `python -m offload_lab.analysis.overhead` from the run folders beside this file. Each "
        "cell: median [min-max] over the repeats, then the effect against the run's first series "
        "(`all_off`, or the broker's provisioned statistics interval; a ratio of "
        "medians for latency, a difference in points for % figures), marked *within noise* when "
        "the two ranges overlap. Servers' CPU: broker + gateway + core, % of one CPU (on the lab "
        "they share CPU 0), averaged over each step; CPU 0 during the load: the same sum, the "
        "median second of the load (host sampling on only).",
    ]
    for point in points:
        commit = (point["git_commit"] or "?")[:7] + (" (dirty)" if point["git_dirty"] else "")
        out += [
            "",
            f"## {_title(point)} (run `{point['run']}`, commit {commit})",
            "",
            f"Calibration: {calibration_line(point['calibration'])}.",
            "",
            point_table(point),
            "",
            target_text(point) + ".",
        ]
    return "\n".join(out) + "\n"


def readme_block(points: list[dict[str, Any]]) -> str:
    """Per run: the targets' reading, then each series' p95 and servers' CPU against the first."""
    lines = []
    for point in points:
        lines.append(
            f"- {_title(point)} ([{point['run']}](/docs/results/overhead/overhead.md)): {target_text(point)}."
        )
        for series in series_of(point)[1:]:
            p95, cpu = effect_text(point, series, "p95_ms"), effect_text(point, series, "servers_cpu_pct")
            during = effect_text(point, series, "servers_cpu_load_pct")
            during = "" if during == "n/a" else f", CPU 0 during the load {during}"
            lines.append(f"  - {series}: p95 {p95}, servers' CPU {cpu}{during}")
    return "\n".join(lines)


def point_block(point: dict[str, Any]) -> str:
    """One run's series side by side (its commit, calibration and table): the block of a page
    that reads one such run, e.g. docs/results/headroom."""
    commit = (point["git_commit"] or "?")[:7] + (" (dirty)" if point["git_dirty"] else "")
    return "\n".join(
        [
            f"{_title(point)}, run `{point['run']}`, commit {commit}. "
            f"Calibration: {calibration_line(point['calibration'])}.",
            "",
            point_table(point),
        ]
    )


def load_points(out: Path) -> list[dict[str, Any]]:
    folders = sorted(p.parent for p in out.glob(f"*/{RUN_FILE}"))
    points = [load_point(f) for f in folders]
    return sorted(points, key=lambda p: (p["mode"] != "async", p["run"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m offload_lab.analysis.overhead", description=__doc__.splitlines()[0]
    )
    parser.add_argument("out", type=Path, help="folder of the overhead run folders")
    args = parser.parse_args(argv)
    try:
        points = load_points(args.out)
    except LoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not points:
        print(f"error: no run folder (run.json) under {args.out}", file=sys.stderr)
        return 2
    (args.out / JSON_FILE).write_text(json.dumps(points, indent=1) + "\n")
    (args.out / TABLE_FILE).write_text(overhead_markdown(points))
    print(f"wrote {args.out / TABLE_FILE} and {args.out / JSON_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
