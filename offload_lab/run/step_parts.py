"""The pieces of one step that need no remote call: the lines printed around it, its step file's
`step` section, the drain time from the core's clock, each host's CPU use, and the results of
several load generators made one (offload_lab.loadgen.k6_merge), their partial summaries kept
when a step is interrupted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..analysis.load import loaded_step
from ..analysis.metrics import StepMetrics, compute_metrics
from ..analysis.samples import SamplesError, read_samples
from ..loadgen import k6_merge
from ..plan.steps import PlannedStep
from ..records import STEPS_DIR, StepParameters, StepRecord
from ..services.cpu import cpu_pct

INTERRUPTED_DIR = "interrupted"  # the run folder's: partial k6 summaries of an interrupted step


# --------------------------------------------------------------------------------------------
# the line printed after each step: the report's own figures (offload_lab.analysis.metrics), not a copy


def headline(record: StepRecord) -> StepMetrics:
    return compute_metrics(loaded_step(record, f"{STEPS_DIR}/{record.file_name}", []))


def _fmt(value: float | None, scale: float = 1.0, unit: str = "") -> str:
    return "n/a" if value is None else f"{value * scale:.1f}{unit}"


def step_start_line(step: PlannedStep, total: int, drain_timeout_s: float) -> str:
    label = f" [{step.label}]" if step.label != step.mode else ""
    drain = f", then up to {drain_timeout_s:g} s for the queue to drain" if step.mode == "async" else ""
    return (
        f"step {step.index:>2}/{total} {step.mode:<5} {step.rate:>4}/s{label}: "
        f"{step.duration_s} s of load{drain} ..."
    )


def format_headline(step: PlannedStep, total: int, record: StepRecord) -> str:
    m = headline(record)
    label = f" [{step.label}]" if step.label != step.mode else ""
    peak = "-" if m.backlog_peak is None else f"{m.backlog_peak:g}"
    drain = (
        "never" if m.drained is False or (m.is_async and m.drain_s is None) else _fmt(m.drain_s, unit=" s")
    )
    return (
        f"step {step.index:>2}/{total} {step.mode:<5} {step.rate:>4}/s{label}: "
        f"avg {_fmt(m.lat_avg)} ms, p95 {_fmt(m.lat_p95)} ms, throughput {_fmt(m.throughput)}/s, "
        f"dropped {_fmt(m.drop_rate, 100)} %, errors {_fmt(m.error_rate, 100)} %, backlog peak {peak} "
        f"(drain {drain})"
    )


def step_parameters(
    step: PlannedStep, gateway: dict[str, str], core: dict[str, str], instruments: dict[str, Any]
) -> StepParameters:
    """A step file's `step` section: the planned step with the settings it ran with (effective:
    `gateway`, `core`, `instruments`) and those it switched."""
    planned = step.as_dict()
    return StepParameters(
        **{
            **planned,
            "faults": list(planned["faults"]),
            "gateway": gateway,
            "gateway_overrides": dict(step.gateway),
            "core": core,
            "core_overrides": dict(step.core),
            "instruments": instruments,
        }
    )


def precise_drain(broker: dict[str, Any], core: dict[str, Any], load_end_wall_s: float) -> None:
    """Replace the sampled drain time by the core's: its last ack/reject after the end of load.

    The queue is sampled once a second from statistics the broker itself refreshes once a
    second, so the sampled drain time is up to ~2 s late; the core's `last_done_at_ns` is exact
    (hosts share a clock: the lab's kernel, or chrony on VMs). The sampled value is kept."""
    broker["drain_observed_s"] = broker.get("drain_s")
    last_done_ns = core.get("last_done_at_ns") or 0
    if broker.get("drained") and last_done_ns:
        broker["drain_s"] = round(max(0.0, last_done_ns / 1e9 - load_end_wall_s), 3)


def host_cpu(
    before: dict[str, Any], after: dict[str, Any], host_groups: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Each host's group, CPUs and average CPU use over the step (% of its own CPUs)."""
    hosts: dict[str, Any] = {}
    for name, end in after.items():
        start = before.get(name)
        entry: dict[str, Any] = {"group": host_groups.get(name), "cpu_pct": None, "cpus": None}
        if end:
            entry["cpus"] = end["cpus"]
        if start and end:
            entry["cpu_pct"] = cpu_pct(start, end)
        hosts[name] = entry
    return hosts


def with_load_generators(
    summary: dict[str, Any], samples_path: Path | None, hosts: dict[str, Any], step: PlannedStep
) -> list[str]:
    """A merged summary of several load generators (offload.generators) completed in place:
    http_req_duration from the merged samples, each generator flagged; returns "host: flag"
    lines. One generator's own summary is left as k6 wrote it ([])."""
    if not (summary.get("offload") or {}).get("generators"):
        return []
    samples = None
    if samples_path is not None:
        try:
            samples = read_samples(samples_path)
        except (OSError, SamplesError):
            samples = None
    k6_merge.with_sample_trend(summary, samples)
    return k6_merge.flag_generators(summary, samples, hosts, step.rate, step.max_vus)


def load_started_at(summary: dict[str, Any], fallback_unix_s: float) -> float:
    """When the load began: the first resume of several generators, else just before k6 started."""
    resumed = [
        g.get("resumed_unix_s")
        for g in (summary.get("offload") or {}).get("generators") or []
        if isinstance(g.get("resumed_unix_s"), int | float)
    ]
    return min(resumed) if resumed else fallback_unix_s


def keep_partial_summary(run_dir: Path, step: PlannedStep, summary: dict[str, Any]) -> dict[str, str]:
    """The summary k6 wrote when an interrupted step was stopped, kept in the run folder (not as
    a step: its load was cut short); returns what run.json says of it."""
    rel = f"{INTERRUPTED_DIR}/{step.stem}.k6.json"
    path = Path(run_dir) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1))
    return {"step": step.filename, "k6_summary": rel}
