"""Which stage limits a step, by Little's law: each stage needs rate x time-held requests in
flight, and has a fixed number of places.

- client (k6): a VU is held for the whole request: work time + the gateway's own latency (sync),
  the gateway's latency alone (async); it has maxVUs.
- gateway (gunicorn): a request holds a worker slot as long as the client waits; it has
  workers x worker_connections (gevent) or workers x threads (gthread, sync).
- core: sync, POST /work holds one of WORK_MAX_CONCURRENT for the work time (on the core the
  gateway calls); async, a task holds one of min(PREFETCH, MAX_IN_FLIGHT or PREFETCH) for the
  work time, summed over the core hosts.

A step is labelled by the first stage, in request order, whose need exceeds its places:
`client-capped`, `gateway-capped`, `core-capped`, else `open`. Async answers before the work is
done, so a core-capped async step still accepts the offered rate: the core's cap makes a backlog.

The gateway's own latency is an estimate before a step runs (GATEWAY_LATENCY_MS); after an async
step ran, its measured median latency is used (docs/design.md, "What limits a step")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .core_spec import consumer_concurrency, work_concurrency
from .gateway_spec import GATEWAY_DEFAULTS

# what the gateway adds to a request: async parse + publish + confirm, sync the hop to the core
# (docs/measurement.md: async avg 2-15 ms on the lab, sync ~6 ms above the work time)
GATEWAY_LATENCY_MS = 5.0
STAGES = ("client", "gateway", "core")
LABELS = {stage: f"{stage}-capped" for stage in STAGES}
OPEN = "open"


@dataclass(frozen=True)
class StepLimit:
    label: str  # client-capped | gateway-capped | core-capped | open
    needs: dict[str, float]  # stage -> requests (tasks) it must hold at once
    capacities: dict[str, int]  # stage -> how many it can hold
    latency_ms: float  # how long a request holds the client and the gateway
    latency_source: str  # "estimate" | "measured median"
    explanation: str

    @property
    def stage(self) -> str | None:
        return None if self.label == OPEN else self.label.removesuffix("-capped")

    def as_dict(self) -> dict:
        return asdict(self)


def _int(settings: dict[str, str], name: str) -> int:
    try:
        return max(1, int(settings.get(name) or GATEWAY_DEFAULTS[name]))
    except ValueError:
        return int(GATEWAY_DEFAULTS[name])


def _gateway_shape(settings: dict[str, str]) -> tuple[str, int, int]:
    """(worker class, workers, places per worker), as gunicorn_conf.worker_concurrency counts."""
    worker_class = settings.get("GUNICORN_WORKER_CLASS") or GATEWAY_DEFAULTS["GUNICORN_WORKER_CLASS"]
    per_worker = "GUNICORN_WORKER_CONNECTIONS" if worker_class == "gevent" else "GUNICORN_THREADS"
    return worker_class, _int(settings, "GUNICORN_WORKERS"), _int(settings, per_worker)


def gateway_concurrency(settings: dict[str, str]) -> int:
    """Requests the gateway serves at once: workers x connections (gevent) or threads."""
    _, workers, per_worker = _gateway_shape(settings)
    return workers * per_worker


def gateway_shape(settings: dict[str, str]) -> str:
    """`gevent 2x1000`, `gthread 2x8`: worker class, workers x places per worker."""
    worker_class, workers, per_worker = _gateway_shape(settings)
    return f"{worker_class} {workers}x{per_worker}"


def core_capacity(mode: str, cores: Sequence[dict[str, str]]) -> int:
    """Sync: POST /work at once on the core the gateway calls (the first); async: tasks worked at
    once, summed over the core hosts."""
    if not cores:
        cores = [{}]
    if mode == "sync":
        return work_concurrency(cores[0])
    return sum(consumer_concurrency(c) for c in cores)


def step_limit(
    mode: str,
    rate: float,
    work_ms: float,
    max_vus: int,
    gateway: dict[str, str],
    cores: Sequence[dict[str, str]],
    measured_latency_ms: float | None = None,
) -> StepLimit:
    """The limit of one step. `gateway`/`cores`: the effective settings (sweep.effective_gateway,
    core_spec.effective_core); `measured_latency_ms`: an async step's measured median."""
    if mode == "async" and measured_latency_ms is not None:
        latency_ms, source = float(measured_latency_ms), "measured median"
    else:
        latency_ms, source = (work_ms if mode == "sync" else 0) + GATEWAY_LATENCY_MS, "estimate"
    held_s = latency_ms / 1000
    work_s = work_ms / 1000
    needs = {
        "client": round(rate * held_s, 1),
        "gateway": round(rate * held_s, 1),
        "core": round(rate * work_s, 1),
    }
    capacities = {
        "client": max_vus,
        "gateway": gateway_concurrency(gateway),
        "core": core_capacity(mode, cores),
    }
    stage = next((s for s in STAGES if needs[s] > capacities[s]), None)
    label = LABELS[stage] if stage else OPEN
    return StepLimit(
        label,
        needs,
        capacities,
        round(latency_ms, 3),
        source,
        _explain(stage, mode, rate, needs, capacities, held_s, work_s, gateway),
    )


def limit_of_step(
    step, gateway: dict[str, str], cores: Sequence[dict[str, str]], measured_latency_ms: float | None = None
) -> StepLimit:
    """step_limit of a planned step (offload_lab.plan.steps.PlannedStep)."""
    return step_limit(step.mode, step.rate, step.work_ms, step.max_vus, gateway, cores, measured_latency_ms)


def measured_median_ms(summary: dict[str, Any]) -> float | None:
    """k6's median request latency (http_req_duration med), None when the summary lacks it."""
    try:
        med = summary["metrics"]["http_req_duration"]["values"]["med"]
    except (KeyError, TypeError):
        return None
    return float(med) if isinstance(med, int | float) and not isinstance(med, bool) else None


def _per_s(places: int, seconds: float) -> str:
    return "any rate" if seconds <= 0 else f"~{places / seconds:,.0f}/s"


def _explain(stage, mode, rate, needs, caps, held_s, work_s, gateway) -> str:
    if stage == "client":
        return (
            f"k6 needs ~{needs['client']:g} VUs (rate x {held_s * 1000:g} ms) and has {caps['client']}: "
            f"it starts at most {_per_s(caps['client'], held_s)}"
        )
    if stage == "gateway":
        return (
            f"the gateway ({gateway_shape(gateway)}) holds {caps['gateway']} requests at once, "
            f"needs ~{needs['gateway']:g}: at most {_per_s(caps['gateway'], held_s)}"
        )
    if stage == "core" and mode == "sync":
        return (
            f"the core serves {caps['core']} POST /work at once (WORK_MAX_CONCURRENT), needs "
            f"~{needs['core']:g}: at most {_per_s(caps['core'], work_s)}, the rest 503"
        )
    if stage == "core":
        done_per_s = caps["core"] / work_s
        return (
            f"the core works {caps['core']} tasks at once (PREFETCH/MAX_IN_FLIGHT), needs "
            f"~{needs['core']:g}: all accepted, a backlog grows ~{rate - done_per_s:,.0f}/s "
            f"(done ~{done_per_s:,.0f}/s)"
        )
    return "needs " + ", ".join(f"{s} {needs[s]:g}/{caps[s]}" for s in STAGES)


# --------------------------------------------------------------------------------------------
# the plan's lines: per series and mode, the rates under each label


def _ranges(rates: list[int], all_rates: list[int]) -> str:
    """`50, 100, 150-400`: runs of consecutive planned rates joined with a dash."""
    position = {r: i for i, r in enumerate(all_rates)}
    runs: list[list[int]] = []
    for r in rates:
        if runs and position[r] == position[runs[-1][-1]] + 1:
            runs[-1].append(r)
        else:
            runs.append([r])
    return ", ".join(", ".join(map(str, run)) if len(run) < 3 else f"{run[0]}-{run[-1]}" for run in runs)


def describe_limits(steps, limits: Sequence[StepLimit]) -> list[str]:
    """Short lines, one per series and mode: `sync: open 50; client-capped 100-400 (...)`."""
    groups: dict[tuple[str, str], dict[str, dict[int, StepLimit]]] = {}
    for step, limit in zip(steps, limits, strict=True):
        by_label = groups.setdefault((step.label, step.mode), {})
        by_label.setdefault(limit.label, {}).setdefault(step.rate, limit)
    lines = []
    for (label, mode), by_label in groups.items():
        name = mode if label == mode else f"{mode} [{label}]"
        all_rates = sorted({r for rates in by_label.values() for r in rates})
        parts = []
        for limit_label, rates in by_label.items():
            lowest = min(rates)
            why = "" if limit_label == OPEN else f" ({_short(rates[lowest], lowest)})"
            parts.append(f"{limit_label} {_ranges(sorted(rates), all_rates)}{why}")
        lines.append(f"  {name}: " + "; ".join(parts))
    return lines


def _short(limit: StepLimit, rate: float) -> str:
    stage = limit.stage
    cap = limit.capacities[stage]
    held_s = limit.latency_ms / 1000
    if stage == "client":
        return f"{cap} VUs x {limit.latency_ms:g} ms: {_per_s(cap, held_s)}"
    if stage == "gateway":
        return f"{cap} at once x {limit.latency_ms:g} ms: {_per_s(cap, held_s)}"
    if "backlog" in limit.explanation:
        work_s = limit.needs["core"] / rate
        return f"{cap} tasks at once: backlog +{rate - cap / work_s:,.0f}/s"
    return f"{cap} POST /work at once"
