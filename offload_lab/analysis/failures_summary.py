"""What failures cost each path (k6/sweeps/failures.yml, published in docs/results/failures), in
a few lines (docs/publications/failures.md): per series and rate, what the client saw and what
became of the work, each figure the median [min-max] of the repeats (analysis.failures reads
each step).

The block `failures` of offload_lab.analysis.generated_blocks."""

from __future__ import annotations

from collections import defaultdict

from .failures import async_failures, sync_failures
from .fmt import spread
from .load import Run
from .metrics import compute_metrics

COLUMNS = (
    "series",
    "rate (/s)",
    "async p95 (ms)",
    "done on attempt 1",
    "done after retries",
    "dead-lettered",
    "lost",
    "completion p99 (ms)",
    "sync errors to retry",
    "sync avg (ms)",
)


def step_figures(run: Run) -> dict[tuple[str, float], dict[str, list[float]]]:
    """(series, rate) -> figure -> one value per repeat."""
    points: dict[tuple[str, float], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for step in run.steps:
        # a series' steps are labelled "<series> <mode>"; a spec without series: by mode only
        series = "" if step.label == step.mode else step.label.removesuffix(f" {step.mode}")
        figures = points[(series, step.rate)]
        m = compute_metrics(step, run.path)
        if step.mode == "async":
            f = async_failures(run.path, step)
            if m.lat_p95 is not None:
                figures["async_p95"].append(m.lat_p95)
            if f is None or not f.accepted:
                continue
            after = sum(n for attempts, n in f.done_by_attempt.items() if attempts > 1)
            dead = sum(sum(by_attempt.values()) for by_attempt in f.dead_by_reason.values())
            figures["first"].append(100 * f.done_by_attempt.get(1, 0) / f.accepted)
            figures["after"].append(100 * after / f.accepted)
            figures["dead"].append(100 * dead / f.accepted)
            if f.lost is not None:
                figures["lost"].append(f.lost)
            p99s = [row.get("p99") for row in f.latency.values() if row.get("p99") is not None]
            if p99s:
                figures["completion_p99"].append(max(p99s))
        elif step.mode == "sync":
            s = sync_failures(run.path, step)
            if s.requests:
                figures["sync_errors"].append(
                    100 * ((s.server_errors or 0) + (s.no_answer or 0)) / s.requests
                )
            if m.lat_avg is not None:
                figures["sync_avg"].append(m.lat_avg)
    return points


def table(run: Run) -> str:
    rows = ["| " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * (len(COLUMNS) - 1)]
    for (series, rate), f in step_figures(run).items():
        cells = [
            series or "-",
            f"{rate:g}",
            spread(f["async_p95"], "{:.1f}"),
            spread(f["first"], "{:.2f}%"),
            spread(f["after"], "{:.2f}%"),
            spread(f["dead"], "{:.2f}%"),
            spread(f["lost"], "{:.0f}"),
            spread(f["completion_p99"], "{:,.0f}"),
            spread(f["sync_errors"], "{:.2f}%"),
            spread(f["sync_avg"], "{:,.0f}"),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def readme_block(run: Run) -> str:
    repeats = max((s.repeat for s in run.steps), default=1)
    head = (
        f"Run `{run.run_id}`, commit {(run.meta.git_commit or '?')[:7]}, every point {repeats} times. "
        "Shares are of the accepted tasks (async) or of the requests (sync); completion p99: the "
        "slowest attempt count's p99, enqueued to done, retries and backoff included."
    )
    return "\n".join([head, "", table(run)])
