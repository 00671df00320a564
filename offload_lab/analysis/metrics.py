"""Derived figures per step, exactly as docs/result-format.md and docs/design.md "Measurements" say.

- attempted = iterations.count + dropped_iterations.count (a missing dropped_iterations is 0:
  k6 leaves it out of the summary when nothing was dropped); drop rate = dropped / attempted.
- throughput = successful responses / the step's configured duration_s (never k6's `rate`,
  which includes the graceful-stop tail); successful = http_reqs.count - http_req_failed.passes
  (`passes` of the http_req_failed rate metric counts FAILED requests).
- error rate = http_req_failed.passes / http_reqs.count.
- client latency = http_req_duration avg / med / p(95) / p(99) / max (ms).
- async: accepted = successful responses; lost = the ledger's figure, by task id (accepted ids
  with no outcome record, not dead-lettered and beyond what is still queued: analysis/ledger.py),
  None where the step has no ledger; counter_gap = accepted - core.completed - core.dead_lettered,
  from the core's in-memory counters, which a core restart resets: never a loss count.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .ledger import step_ledger
from .load import LoadedStep, _num
from .samples import SamplesError, latency_stats, read_samples
from .server_cpu import load_window, servers_cpu_during_load

LOADGEN_SATURATED_PCT = 90.0  # loadgen host CPU above this: the load generator was the limit
VU_EXHAUSTED_FRACTION = 0.9  # busy VUs (Little's law) at or above this share of maxVUs: VU cap
SERVER_HOSTS = ("gateway", "core", "broker")
# latency from the samples and from k6's summary must agree within this (ms): k6 writes the
# CSV values with 6 decimals
SAMPLES_AGREE_MS = 0.01


@dataclass
class StepMetrics:
    file: str
    index: int | None
    label: str
    mode: str
    rate: float
    duration_s: float | None
    max_vus: int | None
    pre_allocated_vus: int | None
    work_ms: float | None
    # k6, client side
    iterations: int | None = None
    dropped: int | None = None
    attempted: int | None = None
    drop_rate: float | None = None  # fraction 0..1
    requests: int | None = None
    failed: int | None = None
    successes: int | None = None
    throughput: float | None = None  # successful responses / s
    error_rate: float | None = None  # fraction 0..1
    lat_avg: float | None = None  # ms
    lat_med: float | None = None
    lat_p95: float | None = None
    lat_p99: float | None = None
    lat_max: float | None = None
    iteration_avg_ms: float | None = None
    busy_vus: float | None = None  # Little's law: completed iterations/s x iteration time
    # async: core and broker
    accepted: int | None = None
    completed: int | None = None
    dead_lettered: int | None = None
    lost: int | None = None  # the ledger's, by task id; None: no ledger
    counter_gap: int | None = None  # accepted - the core's completed and dead-lettered counters
    drained: bool | None = None
    comp_p50: float | None = None  # ms, completion latency (core)
    comp_p95: float | None = None
    comp_p99: float | None = None
    comp_max: float | None = None
    backlog_peak: float | None = None  # messages waiting for a consumer (ready)
    in_flight_peak: float | None = None  # messages delivered and not yet acked (unacked)
    drain_s: float | None = None
    # hosts
    loadgen_cpu_pct: float | None = None
    server_cpu_pct: float | None = None  # busiest of gateway/core/broker
    # broker, gateway and core together (CPU 0 on the lab), the median second of the load
    servers_cpu_load_pct: float | None = None
    loadgen_flag: str = ""  # "" | "saturated" | "drops below VU cap" | "VU cap"
    limit: str = ""  # client-capped | gateway-capped | core-capped | open; "": not recorded
    repeat: int = 1
    # latency percentiles computed from the per-request samples ("samples") or read from k6's
    # summary ("k6 summary"); a disagreement between the two is described in samples_check
    latency_source: str = "k6 summary"
    samples_check: str = ""
    # an aggregate point (median of each figure) keeps the repeats it was made from
    repeats: list[StepMetrics] = field(default_factory=list)
    flagged_repeats: int = 0  # how many of those repeats carry a loadgen flag

    @property
    def is_async(self) -> bool:
        return self.mode == "async"

    @property
    def nothing_lost(self) -> bool | None:
        """True when the ledger holds an outcome for every accepted task; None without a ledger."""
        if self.lost is None:
            return None
        return self.lost == 0

    @property
    def loadgen_limited(self) -> bool:
        return self.loadgen_flag in ("saturated", "drops below VU cap")

    @property
    def n(self) -> int:
        """How many runs of this point the figures stand for."""
        return len(self.repeats) or 1

    def spread(self, attr: str) -> tuple[float, float] | None:
        """(min, max) of a figure over the repeats of an aggregate point; None for a single step."""
        values = [v for v in (getattr(r, attr) for r in self.repeats) if v is not None]
        return (min(values), max(values)) if len(self.repeats) > 1 and values else None


def _count(values: dict[str, Any] | None, key: str = "count") -> int | None:
    if values is None:
        return None
    v = _num(values.get(key))
    return int(round(v)) if v is not None else None


def _host_cpu(hosts: dict[str, Any] | None, group: str) -> float | None:
    """CPU % of the busiest host of an inventory group over the step.

    `hosts` is keyed by group (docs/result-format.md's example) or by host name with a "group"
    field (what `fab sweep` writes when host names differ from group names); an entry may also
    be a list of hosts.
    """
    if not hosts:
        return None
    vals: list[float] = []
    for key, entry in hosts.items():
        entries = entry if isinstance(entry, list) else [entry]
        for e in entries:
            if not isinstance(e, dict):
                continue
            if key == group or e.get("group") == group:
                v = _num(e.get("cpu_pct"))
                if v is not None:
                    vals.append(v)
    return max(vals) if vals else None


def compute_metrics(step: LoadedStep, run_dir: Path | None = None) -> StepMetrics:
    m = StepMetrics(
        file=step.file,
        index=step.index,
        label=step.label,
        mode=step.mode,
        rate=step.rate,
        duration_s=step.duration_s,
        max_vus=step.max_vus,
        pre_allocated_vus=step.pre_allocated_vus,
        work_ms=step.work_ms,
        repeat=step.repeat,
    )
    if step.k6 is not None:
        m.iterations = _count(step.k6_metric("iterations"))
        dropped = step.k6_metric("dropped_iterations")
        m.dropped = (_count(dropped) if dropped is not None else None) or 0  # absent = 0
        if m.iterations is not None:
            m.attempted = m.iterations + m.dropped
            m.drop_rate = m.dropped / m.attempted if m.attempted else None
        m.requests = _count(step.k6_metric("http_reqs"))
        m.failed = _count(step.k6_metric("http_req_failed"), "passes")
        if m.requests is not None and m.failed is not None:
            m.successes = m.requests - m.failed
            if m.duration_s:
                m.throughput = m.successes / m.duration_s
            m.error_rate = m.failed / m.requests if m.requests else None
        trend = step.k6_metric("http_req_duration")
        if trend is not None:
            m.lat_avg = _num(trend.get("avg"))
            m.lat_med = _num(trend.get("med"))
            m.lat_p95 = _num(trend.get("p(95)"))
            m.lat_p99 = _num(trend.get("p(99)"))
            m.lat_max = _num(trend.get("max"))
        it_trend = step.k6_metric("iteration_duration")
        m.iteration_avg_ms = _num(it_trend.get("avg")) if it_trend else None
        per_iteration_ms = m.iteration_avg_ms if m.iteration_avg_ms is not None else m.lat_avg
        if m.iterations is not None and m.duration_s and per_iteration_ms is not None:
            m.busy_vus = m.iterations / m.duration_s * per_iteration_ms / 1000

    if step.mode == "async":
        m.accepted = m.successes
        core = step.core or {}
        m.completed = _count(core, "completed")
        m.dead_lettered = _count(core, "dead_lettered")
        if m.accepted is not None and m.completed is not None:
            m.counter_gap = m.accepted - m.completed - (m.dead_lettered or 0)
        ledger = step_ledger(run_dir, step) if run_dir is not None else step.ledger
        if isinstance(ledger, dict) and isinstance(ledger.get("lost"), int):
            # one figure per fact: where a ledger exists, the tables' done and dead-lettered are
            # its distinct task ids too, not the counters a core restart resets
            m.lost = ledger["lost"]
            m.completed = _count(ledger, "done")
            m.dead_lettered = _count(ledger, "dead_lettered")
        lat = core.get("completion_latency_ms")
        if isinstance(lat, dict) and (_num(lat.get("count")) or 0) > 0:
            m.comp_p50 = _num(lat.get("p50"))
            m.comp_p95 = _num(lat.get("p95"))
            m.comp_p99 = _num(lat.get("p99"))
            m.comp_max = _num(lat.get("max"))
        broker = step.broker or {}
        # runs that told ready from unacked: the backlog is what waits (ready); older runs
        # only have ready + unacked
        m.backlog_peak = _num(broker.get("peak_ready"))
        m.in_flight_peak = _num(broker.get("peak_unacked"))
        if m.backlog_peak is None:
            m.backlog_peak = _num(broker.get("peak"))
        if m.backlog_peak is None and isinstance(broker.get("samples"), list):
            depths = [_num(s[1]) for s in broker["samples"] if isinstance(s, list) and len(s) >= 2]
            depths = [d for d in depths if d is not None]
            m.backlog_peak = max(depths) if depths else None
        m.drain_s = _num(broker.get("drain_s"))
        drained = broker.get("drained")
        m.drained = drained if isinstance(drained, bool) else None

    if run_dir is not None and step.samples_file:
        _latency_from_samples(m, Path(run_dir) / step.samples_file)

    m.loadgen_cpu_pct = _host_cpu(step.hosts, "loadgen")
    server = [_host_cpu(step.hosts, h) for h in SERVER_HOSTS]
    server = [v for v in server if v is not None]
    m.server_cpu_pct = max(server) if server else None
    m.servers_cpu_load_pct = servers_cpu_during_load(
        step.hosts, step.hosts_timeline, load_window(step.clock, step.duration_s)
    )
    m.loadgen_flag = loadgen_flag(m)
    label = (step.limit or {}).get("label")
    m.limit = label if isinstance(label, str) else ""
    return m


def loadgen_flag(m: StepMetrics) -> str:
    """Was the load generator, rather than the system under test, the limit of this step?

    - "saturated": the loadgen host's CPU was above LOADGEN_SATURATED_PCT.
    - "drops below VU cap": iterations were dropped although, by Little's law (completed
      iterations/s x average iteration time), the VUs were not all busy waiting on responses:
      k6 itself could not keep up (CPU, VUs created mid-test, ...). When that cannot be computed,
      drops at low server CPU (< 50 %) count instead.
    - "VU cap": iterations were dropped because every VU was waiting on a response (rate x
      latency >= maxVUs). Expected for sync at high rates: the architecture's limit, shown as a
      note, not a loadgen problem.
    """
    if m.loadgen_cpu_pct is not None and m.loadgen_cpu_pct > LOADGEN_SATURATED_PCT:
        return "saturated"
    if not m.dropped:
        return ""
    if m.busy_vus is not None and m.max_vus:
        if m.busy_vus >= VU_EXHAUSTED_FRACTION * m.max_vus:
            return "VU cap"
        return "drops below VU cap"
    if m.server_cpu_pct is not None and m.server_cpu_pct < 50:
        return "drops below VU cap"
    return ""


def _latency_from_samples(m: StepMetrics, path: Path) -> None:
    """Client latency from every request's own sample, checked against k6's summary."""
    try:
        stats = latency_stats(read_samples(path))
    except (OSError, SamplesError) as exc:
        m.samples_check = f"samples unreadable ({exc}); latency from k6's summary"
        return
    if not stats["count"]:
        m.samples_check = "samples hold no request; latency from k6's summary"
        return
    from_summary = {"avg": m.lat_avg, "med": m.lat_med, "p95": m.lat_p95, "p99": m.lat_p99, "max": m.lat_max}
    off = [
        f"{k} {v:.3f} vs {stats[k]:.3f} ms"
        for k, v in from_summary.items()
        if v is not None and abs(v - stats[k]) > SAMPLES_AGREE_MS
    ]
    if m.requests is not None and m.requests != stats["count"]:
        off.append(f"{stats['count']} samples vs {m.requests} requests")
    if off:
        m.samples_check = "samples disagree with k6's summary: " + ", ".join(off)
    m.lat_avg, m.lat_med, m.lat_p95 = stats["avg"], stats["med"], stats["p95"]
    m.lat_p99, m.lat_max = stats["p99"], stats["max"]
    m.latency_source = "samples"


def run_metrics(steps: list[LoadedStep], run_dir: Path | None = None) -> list[StepMetrics]:
    return [compute_metrics(s, run_dir) for s in steps]


# --------------------------------------------------------------------------------------------
# repeats: one point per (series, mode, rate), each figure the median of its repeats

FLAG_SEVERITY = ("", "VU cap", "drops below VU cap", "saturated")
_IDENTITY = {
    "file",
    "index",
    "label",
    "mode",
    "rate",
    "duration_s",
    "max_vus",
    "pre_allocated_vus",
    "work_ms",
}


def _median(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return None
    if all(isinstance(v, bool) for v in present):
        return all(present)
    return statistics.median(present)


def aggregate(repeats: list[StepMetrics]) -> StepMetrics:
    """One point from its repeats: the median of every figure, the worst loss, and the most
    severe loadgen flag, so that a median never hides a repeat the client limited."""
    if len(repeats) == 1:
        return repeats[0]
    first = repeats[0]
    values: dict[str, Any] = {}
    for f in fields(StepMetrics):
        if f.name in _IDENTITY or f.name in ("repeats", "repeat", "flagged_repeats"):
            continue
        column = [getattr(r, f.name) for r in repeats]
        if all(v is None or isinstance(v, int | float) for v in column):  # a figure (bools too)
            values[f.name] = _median(column)
    lost = [r.lost for r in repeats if r.lost is not None]
    values["lost"] = max(lost, key=abs) if lost else None
    gaps = [r.counter_gap for r in repeats if r.counter_gap is not None]
    values["counter_gap"] = max(gaps, key=abs) if gaps else None
    values["loadgen_flag"] = max((r.loadgen_flag for r in repeats), key=FLAG_SEVERITY.index)
    values["latency_source"] = (
        "samples" if all(r.latency_source == "samples" for r in repeats) else "k6 summary"
    )
    values["samples_check"] = "; ".join(f"r{r.repeat}: {r.samples_check}" for r in repeats if r.samples_check)
    return replace(
        first,
        **values,
        file=f"{len(repeats)} repeats",
        index=min((r.index for r in repeats if r.index is not None), default=None),
        repeat=0,
        repeats=list(repeats),
        flagged_repeats=sum(1 for r in repeats if r.loadgen_flag in ("saturated", "drops below VU cap")),
    )


def aggregate_points(metrics: list[StepMetrics]) -> list[StepMetrics]:
    """Group the steps of a run by point (series, mode, rate), in order of first appearance."""
    groups: dict[tuple[str, str, float], list[StepMetrics]] = {}
    for m in metrics:
        groups.setdefault((m.label, m.mode, m.rate), []).append(m)
    return [aggregate(g) for g in groups.values()]
