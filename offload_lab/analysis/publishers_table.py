"""The publisher story's table (k6/sweeps/publishers.yml, published in docs/results/publishers):
one row per series, the publisher and the gunicorn workers it ran under, its p95 at every rate
with what was dropped or failed there, what it served at the top rate, and what the ledger lost
by task id. Each figure is the median [min-max] of the repeats.

The block `publishers` of offload_lab.analysis.generated_blocks."""

from __future__ import annotations

from collections.abc import Sequence

from .fmt import fmt_ms, fmt_num, fmt_pct, ranged
from .load import Run
from .metrics import StepMetrics, aggregate_points, compute_metrics

DATA_LINK = "/docs/results/publishers/report/summary.md"


def load_points(run: Run) -> list[StepMetrics]:
    """Every point of the run, in the order the run first met it."""
    return aggregate_points([compute_metrics(step, run.path) for step in run.steps])


def gunicorn_text(gateway: dict) -> str:
    """How the gateway served: `gthread 2 x 64` (threads) or `gevent 2 x 1000` (connections)."""
    worker = gateway.get("GUNICORN_WORKER_CLASS", "?")
    per_worker = gateway.get(
        "GUNICORN_THREADS" if worker == "gthread" else "GUNICORN_WORKER_CONNECTIONS", "?"
    )
    return f"{worker} {gateway.get('GUNICORN_WORKERS', '?')} x {per_worker}"


def publisher_text(gateway: dict, label: str) -> str:
    name = gateway.get("PUBLISHER", label)
    return name if str(gateway.get("PUBLISH_CONFIRM", "1")) == "1" else f"{name}, no confirms"


def _any_nonzero(point: StepMetrics, attr: str) -> bool:
    """Whether any repeat shows the share as more than 0.0%."""
    return any(fmt_pct(getattr(r, attr)) not in ("0.0%", "n/a") for r in point.repeats or [point])


def p95_cell(point: StepMetrics | None) -> str:
    """p95 (ms), followed by the share dropped and the share failed where a repeat had any."""
    if point is None:
        return "missing"
    parts = [ranged(point, "lat_p95", fmt_ms)]
    if _any_nonzero(point, "drop_rate"):
        parts.append(f"{ranged(point, 'drop_rate', fmt_pct)} dropped")
    if _any_nonzero(point, "error_rate"):
        parts.append(f"{ranged(point, 'error_rate', fmt_pct)} errors")
    return ", ".join(parts)


def lost_cell(points: Sequence[StepMetrics]) -> str:
    """The ledger's lost tasks over every step of a series."""
    lost = [r.lost for p in points for r in p.repeats or [p]]
    known = [v for v in lost if v is not None]
    if not known:
        return "no ledger"
    losing = [v for v in known if v]
    if not losing:
        return f"0 in {len(known)} steps"
    low, high = min(losing), max(losing)
    amount = f"{low:,}" if low == high else f"{low:,}-{high:,}"
    return f"**{amount} per step, in {len(losing)} of {len(known)} steps**"


def table(points: Sequence[StepMetrics], gateways: dict[str, dict]) -> str:
    rates = sorted({p.rate for p in points})
    top = rates[-1]
    head = [
        "publisher",
        "gunicorn",
        *(f"p95 at {r:g}/s (ms)" for r in rates),
        f"served at {top:g}/s (/s)",
        "lost",
    ]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---|" * len(rates) + "---:|---|"]
    labels = list(dict.fromkeys(p.label for p in points))
    for label in labels:
        own = {p.rate: p for p in points if p.label == label}
        gateway = gateways.get(label, {})
        served = ranged(own[top], "throughput", fmt_num) if top in own else "missing"
        cells = [
            publisher_text(gateway, label),
            gunicorn_text(gateway),
            *(p95_cell(own.get(r)) for r in rates),
            served,
            lost_cell(list(own.values())),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_block(run: Run) -> str:
    points = load_points(run)
    gateways = {step.label: step.gateway for step in run.steps}
    meta = run.meta
    repeats = max((p.n for p in points), default=1)
    dirty = " with uncommitted changes" if meta.git_dirty else ""
    broker = (meta.versions or {}).get("rabbitmq", "?")
    source = (
        f"Run `{run.run_id}`, commit {str(meta.git_commit or '?')[:7]}{dirty}, "
        f"{str(meta.started_at or '?')[:10]}, RabbitMQ {broker}, every point {repeats} times "
        f"([report]({DATA_LINK})). p95: median [min-max] of the repeats, followed by the share "
        "dropped and the share of requests failed where any repeat had some; lost: accepted task ids "
        "the ledger holds no outcome for."
    )
    return "\n".join([source, "", table(points, gateways)])
