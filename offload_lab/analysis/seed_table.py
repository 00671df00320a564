"""The table of the original study (k6/sweeps/seed.yml, published in docs/results/seed; quoted
by README.md and docs/publications/seed.md): per rate, sync and async side by side, each figure
the median [min-max] of the repeats, and the targets the seed must meet on the lab
(docs/measurement.md, "Headroom"), read from the data.

The block `seed` of offload_lab.analysis.generated_blocks."""

from __future__ import annotations

from collections.abc import Callable

from .fmt import fmt_ms, fmt_num, fmt_pct, ranged
from .load import Run
from .metrics import StepMetrics, aggregate_points, compute_metrics
from .run_header import broker_line, calibration_line

# what the study found at its top rate, and the headroom the lab must leave (issue 20)
TARGET_RATE, TARGET_AVG_MS, TARGET_P95_MS, TARGET_SERVERS_CPU_PCT = 400, 4.0, 10.0, 60.0


def _cpu_text(v: float | None) -> str:
    return fmt_num(v, 1)


def load_points(run: Run) -> dict[tuple[str, float], StepMetrics]:
    """(mode, rate) -> the point (median of its repeats)."""
    metrics = [compute_metrics(step, run.path) for step in run.steps]
    return {(p.mode, p.rate): p for p in aggregate_points(metrics)}


def _cell(points: dict[tuple[str, float], StepMetrics], mode: str, rate: float, attr: str,
          fmt: Callable[[float | None], str]) -> str:  # fmt: skip
    point = points.get((mode, rate))
    return "missing" if point is None else ranged(point, attr, fmt)


def table(points: dict[tuple[str, float], StepMetrics]) -> str:
    head = (
        "| rate (req/s) | sync avg (ms) | sync throughput (/s) | sync dropped | async avg (ms) "
        "| async p95 (ms) | async p99 (ms) | async throughput (/s) | async dropped "
        "| CPU 0 during async load (%) |"
    )
    lines = [head, "|---" + "|---:" * 9 + "|"]
    for rate in sorted({r for _, r in points}):
        cells = [
            _cell(points, "sync", rate, "lat_avg", fmt_ms),
            _cell(points, "sync", rate, "throughput", fmt_num),
            _cell(points, "sync", rate, "drop_rate", fmt_pct),
            _cell(points, "async", rate, "lat_avg", fmt_ms),
            _cell(points, "async", rate, "lat_p95", fmt_ms),
            _cell(points, "async", rate, "lat_p99", fmt_ms),
            _cell(points, "async", rate, "throughput", fmt_num),
            _cell(points, "async", rate, "drop_rate", fmt_pct),
            _cell(points, "async", rate, "servers_cpu_load_pct", _cpu_text),
        ]
        lines.append(f"| {rate:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def targets_text(points: dict[tuple[str, float], StepMetrics]) -> str:
    top = points.get(("async", TARGET_RATE))
    if top is None or top.lat_avg is None or top.lat_p95 is None:
        return f"Targets: no async step at {TARGET_RATE}/s with latency figures."
    async_drops = [r.dropped or 0 for p in points.values() if p.is_async for r in (p.repeats or [p])]
    steps = len(async_drops)
    dropped = sum(async_drops)
    cpu = top.servers_cpu_load_pct
    avg_ok, p95_ok = top.lat_avg <= TARGET_AVG_MS, top.lat_p95 <= TARGET_P95_MS
    parts = [
        f"avg {fmt_ms(top.lat_avg)} ms (target at most {TARGET_AVG_MS:g}: {_verdict(avg_ok)})",
        f"p95 {fmt_ms(top.lat_p95)} ms (target at most {TARGET_P95_MS:g}: {_verdict(p95_ok)})",
    ]
    if cpu is not None:
        ok = cpu <= TARGET_SERVERS_CPU_PCT
        parts.append(
            f"CPU 0 (broker, gateway and core) {cpu:.1f}% busy during the load "
            f"(target at most {TARGET_SERVERS_CPU_PCT:g}: {_verdict(ok)})"
        )
    drops = f"{dropped:,} iterations dropped in {steps} async steps (target 0: {_verdict(dropped == 0)})"
    return f"Targets, async at {TARGET_RATE}/s (medians): " + "; ".join(parts) + f". {drops}."


def readme_block(run: Run) -> str:
    points = load_points(run)
    commit = (run.meta.git_commit or "?")[:7]
    repeats = max((p.n for p in points.values()), default=1)
    first = next(iter(run.steps), None)
    broker = broker_line(((first.broker or {}).get("facts")) if first else None)
    source = (
        f"Run `{run.run_id}`, commit {commit}, every point {repeats} times, interleaved. Broker: {broker}. "
        f"Calibration: {calibration_line(run.meta.calibration)}."
    )
    return "\n".join([source, "", table(points), "", targets_text(points)])
