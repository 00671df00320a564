"""One probe of `fab capacity`, judged from its step file: did it meet the SLO (why not), and what
does its evidence say limited it (the bottleneck). Pure functions of the step's record
(offload_lab.records), so the search (offload_lab/capacity/search.py) is tested with made-up steps."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from ..analysis.load import loaded_step
from ..analysis.metrics import compute_metrics
from ..analysis.server_cpu import clock_window, readings_within
from ..plan.capacity_fields import BY_KEY as CAPACITY_FIELD
from ..plan.limits import gateway_concurrency
from ..plan.spec_fields import BY_KEY as SWEEP_FIELD
from ..records import StepRecord

BUSY_CPU_PCT = 90.0  # a host whose CPUs are this busy is saturated
# A latency failure on CPUs that are not saturated is put down to contention for them when the
# tasks of a host pinned there waited for a CPU at least this share of the load (the median of
# its seconds, Linux PSI "some"). In the lab (broker, gateway and core on CPU 0), kombu_pool at
# 60/s (p95 11 ms, CPU 0 32 % busy) had the broker and the gateway waiting 8-16 % of each second;
# at 250/s (p95 63 ms, 75 % busy) 25-40 %.
CONTENDED_WAIT_PCT = 20.0
# A latency failure with every server CPU at most this busy and no waiting is the path's own
# latency: what one request costs, not what the load does to it.
IDLE_CPU_PCT = 25.0
SATURATED_SHARE = 0.9  # a stage (the client's VUs, the gateway's places) this full is saturated
VU_HEADROOM = 1.5  # VUs = rate x the latency budget x this, + VU_SPARE
VU_SPARE = 10
# a budget below the stalls a busy shared CPU gives (a 200/s probe in the lab had a 362 ms max
# with p95 129 ms) makes k6 drop iterations at a stall instead of measuring it as latency
MIN_LATENCY_BUDGET_MS = 200.0
SERVER_GROUPS = ("gateway", "core", "broker")
MAX_VUS = SWEEP_FIELD["max_vus"].range[1]


@dataclass(frozen=True)
class Slo:
    p95_ms: float = CAPACITY_FIELD["slo_p95_ms"].default  # sync: above the work time (a fixed sleep)
    max_error_pct: float = CAPACITY_FIELD["max_error_pct"].default


@dataclass
class Probe:
    """A probe's verdict: passed, or the reasons it failed; its evidence, the named bottleneck."""

    rate: int
    passed: bool
    reasons: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)  # most telling first
    bottleneck: str | None = None  # loadgen | client | <host> CPU | gateway | core | None
    invalid: bool = False  # the load generator limited the probe: it measured k6, not the lab
    step_file: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    failing_figures: list[str] = field(default_factory=list)  # the key in figures behind each reason

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def latency_budget_ms(slo: Slo) -> float:
    """The latency (above the work, for sync) a probe's VUs are sized for."""
    return max(2 * slo.p95_ms, MIN_LATENCY_BUDGET_MS)


def probe_vus(mode: str, rate: int, work_ms: float, slo: Slo) -> int:
    """maxVUs by Little's law: rate x (work time for sync + a latency budget) with headroom, so
    that a probe within the SLO never runs short of VUs (the budget: twice the SLO, >= 200 ms)."""
    budget_ms = (work_ms if mode == "sync" else 0) + latency_budget_ms(slo)
    return min(MAX_VUS, math.ceil(rate * budget_ms / 1000 * VU_HEADROOM) + VU_SPARE)


def _fmt(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None else f"{v:,.{digits}f}"


def judge(record: StepRecord, slo: Slo, shared_cpus: dict[str, list[str]] | None = None) -> Probe:
    """The verdict on one probe's step (as Sweep.run_step recorded it); `shared_cpus`: the CPUs
    several hosts are pinned to (shared_cpu_sets of run.json's hosts), whose sum can saturate."""
    m = compute_metrics(loaded_step(record, "probe", []))
    work_ms = m.work_ms or 0
    reasons: list[str] = []
    failing: list[str] = []  # the figure behind each reason (Probe.failing_figures)
    p95_above_work = None if m.lat_p95 is None else m.lat_p95 - (work_ms if m.mode == "sync" else 0)
    failed_on = {
        "latency": p95_above_work is not None and p95_above_work > slo.p95_ms,
        "errors": m.error_rate is not None and m.error_rate * 100 > slo.max_error_pct,
    }
    if p95_above_work is None:
        reasons.append("no latency measured")
        failing.append("p95_ms")
    elif failed_on["latency"]:
        above = " above the work time" if m.mode == "sync" else ""
        reasons.append(f"p95 {_fmt(p95_above_work)} ms{above} over the SLO {slo.p95_ms:g} ms")
        failing.append("p95_ms")
    if m.dropped:
        reasons.append(f"{m.dropped:,} iterations dropped ({_fmt((m.drop_rate or 0) * 100, 2)} %)")
        failing.append("dropped")
    if failed_on["errors"]:
        reasons.append(f"errors {_fmt(m.error_rate * 100, 2)} % over {slo.max_error_pct:g} %")
        failing.append("error_pct")
    short = _vus_short(m.busy_vus, m.max_vus)
    if short:
        reasons.append(short)
        failing.append("busy_vus")
    if short and p95_above_work is not None and p95_above_work > latency_budget_ms(slo):
        # the VUs were sized for latencies up to the budget: beyond it the server's latency, not
        # the client, used them up (a collapsing server), and the probe measured the lab
        short = None
    growth = backlog_growth(record.broker, m.rate) if m.mode == "async" else None
    if growth:
        reasons.append(f"not sustained: {growth}")
        failing.append("backlog_peak")
    evidence, bottleneck, invalid = _evidence(record, m, short, growth, shared_cpus or {}, failed_on)
    figures = {
        "p95_ms": m.lat_p95,
        "avg_ms": m.lat_avg,
        "throughput": m.throughput,
        "dropped": m.dropped,
        "error_pct": None if m.error_rate is None else m.error_rate * 100,
        "max_vus": m.max_vus,
        "busy_vus": None if m.busy_vus is None else round(m.busy_vus, 1),
        "backlog_peak": m.backlog_peak,
    }
    return Probe(int(m.rate), not reasons, reasons, evidence, bottleneck, invalid, None, figures, failing)


def _vus_short(busy: float | None, max_vus: int | None) -> str | None:
    if busy is None or not max_vus or busy < SATURATED_SHARE * max_vus:
        return None
    return f"the client was short of VUs (~{busy:,.0f} of {max_vus} busy)"


def backlog_growth(broker: Any, rate: float) -> str | None:
    """A ready backlog that grew through the load (the core finished fewer tasks than offered):
    the second half's peak above the first half's, and at least a second of arrivals waiting."""
    if not isinstance(broker, dict):
        return None
    end = broker.get("load_end_s")
    samples = [s for s in broker.get("samples") or [] if isinstance(s, list) and len(s) >= 3]
    if not samples or not end:
        return None
    during = [(t, ready) for t, _, ready in (s[:3] for s in samples) if t <= end and ready is not None]
    first = [r for t, r in during if t <= end / 2]
    second = [r for t, r in during if t > end / 2]
    if not first or not second:
        return None
    peak = max(second)
    if peak > max(first) and peak >= max(rate, 50):
        return f"the ready backlog grew to {peak:,} during the load (consumer-bound)"
    return None


def _load_seconds(record: StepRecord, series: str = "samples") -> list[dict[str, Any]]:
    """Each second's figure per host while k6 ran (up to a second after it), from a series of
    hosts_timeline: `samples` (CPU %) or `cpu_wait_samples` (% of the second some task waited
    for a CPU); every reading when the step has no clock."""
    window = clock_window(record.clock)
    lo, hi = (window[0], window[1] + 1) if window else (None, None)
    return readings_within((record.hosts_timeline or {}).get(series), lo, hi)


def _cpu_during_load(record: StepRecord, host: str, series: str = "samples") -> float | None:
    """The median of the host's per-second CPU % (or CPU wait %) while k6 ran."""
    seconds = _load_seconds(record, series)
    values = [float(v) for second in seconds if isinstance(v := second.get(host), int | float)]
    return statistics.median(values) if values else None


def cpu_wait_during_load(record: StepRecord, host: str) -> float | None:
    """The median share of the load's seconds in which some task of the host waited for a CPU."""
    return _cpu_during_load(record, host, "cpu_wait_samples")


def busy_hosts(record: StepRecord) -> list[tuple[str, str, float]]:
    """(host, group, CPU %) of every host whose CPUs were >= BUSY_CPU_PCT busy over the step or
    during the load, busiest first."""
    out = []
    for name, entry in record.hosts.items():
        if not isinstance(entry, dict):
            continue
        group = entry.get("group") or name
        values = [
            v for v in (entry.get("cpu_pct"), _cpu_during_load(record, name)) if isinstance(v, int | float)
        ]
        if values and max(values) >= BUSY_CPU_PCT:
            out.append((name, group, max(values)))
    return sorted(out, key=lambda h: -h[2])


def shared_cpu_sets(hosts: Any) -> dict[str, list[str]]:
    """CPU list -> the hosts pinned to it, for CPUs two or more hosts share (run.json's `hosts`:
    group -> [{name, cpu_list}]). Each host's CPU % counts its own cgroup against its CPUs, so
    hosts pinned to one CPU add up to that CPU's use."""
    by_list: dict[str, list[str]] = {}
    for entries in (hosts or {}).values() if isinstance(hosts, dict) else []:
        for h in entries if isinstance(entries, list) else [entries]:
            if isinstance(h, dict) and h.get("cpu_list") and h.get("name"):
                by_list.setdefault(str(h["cpu_list"]), []).append(str(h["name"]))
    return {cpus: names for cpus, names in by_list.items() if len(names) > 1}


def shared_cpu_use(record: StepRecord, shared: dict[str, list[str]]) -> list[SharedCpu]:
    """How busy each shared CPU set was, busiest first: the sum of its hosts' CPU % (each the
    higher of the step's average and the median during the load), and the highest per-second
    sum while k6 ran (a tail-latency SLO feels the busiest seconds)."""
    out = []
    hosts = record.hosts
    seconds = _load_seconds(record)
    for cpus, names in shared.items():
        total = 0.0
        for name in names:
            entry = hosts.get(name) if isinstance(hosts.get(name), dict) else {}
            values = [entry.get("cpu_pct"), _cpu_during_load(record, name)]
            total += max((v for v in values if isinstance(v, int | float)), default=0.0)
        sums = [sum(v for n in names if isinstance(v := second.get(n), int | float)) for second in seconds]
        waits = {n: w for n in names if (w := cpu_wait_during_load(record, n)) is not None}
        out.append(SharedCpu(cpus, names, total, max(sums) if sums else None, waits))
    return sorted(out, key=lambda c: -c.pct)


@dataclass(frozen=True)
class SharedCpu:
    cpus: str  # the CPU list the hosts are pinned to, e.g. "0"
    hosts: list[str]
    pct: float  # over the load
    peak: float | None  # in the busiest second of the load
    waits: dict[str, float] = field(default_factory=dict)  # host -> its CPU wait % (median second)

    def text(self) -> str:
        return f"CPU {self.cpus}, shared by {', '.join(self.hosts)}"

    @property
    def contended(self) -> bool:
        return bool(self.waits) and max(self.waits.values()) >= CONTENDED_WAIT_PCT

    def waits_text(self) -> str:
        ordered = sorted(self.waits.items(), key=lambda w: -w[1])
        return ", ".join(f"{name} {pct:.0f} %" for name, pct in ordered)


def _evidence(record, m, vus_short, growth, shared, failed_on=None) -> tuple[list[str], str | None, bool]:
    """What limited the probe, most telling first: the load generator (then the result is
    invalid), a server host's CPUs, a CPU several hosts share (saturated, in bursts, or, for a
    latency failure, contended), the gateway's places (Little's law), the core (a backlog), and
    for a latency failure on idle CPUs or an error failure with nothing full, the path itself."""
    failed_on = failed_on or {}
    found: list[tuple[str, str]] = []
    hosts = busy_hosts(record)
    for name, group, pct in hosts:
        if group == "loadgen":
            found.append(("loadgen", f"the load generator {name}'s CPUs were {pct:.0f} % busy"))
    if vus_short:
        found.append(("client", vus_short))
    for name, group, pct in hosts:
        if group != "loadgen":
            found.append((f"{name} CPU", f"{name} ({group}) CPUs {pct:.0f} % busy"))
    shared_use = shared_cpu_use(record, shared)
    for c in shared_use:
        if c.pct >= BUSY_CPU_PCT:
            found.append((f"CPU {c.cpus} (shared)", f"{c.text()}, {c.pct:.0f} % busy"))
    for c in shared_use:  # below 90 % on the whole, saturated at times
        if c.pct < BUSY_CPU_PCT and c.peak is not None and c.peak >= BUSY_CPU_PCT:
            text = f"{c.text()}, {c.peak:.0f} % busy in its busiest second ({c.pct:.0f} % on the whole)"
            found.append((f"CPU {c.cpus} (shared, in bursts)", text))
    for c in (
        shared_use if failed_on.get("latency") else []
    ):  # latency from waiting for a CPU, not from a full one
        if c.pct < BUSY_CPU_PCT and (c.peak is None or c.peak < BUSY_CPU_PCT) and c.contended:
            text = (
                f"{c.text()}, {c.pct:.0f} % busy; the tasks of its hosts waited for it "
                f"(share of the load's seconds, median): {c.waits_text()}"
            )
            found.append((f"CPU {c.cpus} (shared, contended)", text))
    places = gateway_concurrency(record.step.gateway)
    if m.throughput and m.lat_avg is not None:
        held = m.throughput * m.lat_avg / 1000  # Little's law: requests inside the gateway
        if held >= SATURATED_SHARE * places:
            found.append(("gateway", f"the gateway held ~{held:,.0f} of its {places} places"))
    if growth:
        found.append(("core", growth))
    limit = record.limit or {}
    if limit.get("label") == "core-capped" and not growth:
        found.append(("core", str(limit.get("explanation"))))
    idle = all(c.pct <= IDLE_CPU_PCT and not c.contended for c in shared_use)
    slow = failed_on.get("latency") and idle
    if (slow or failed_on.get("errors")) and not found and shared_use:
        c = shared_use[0]
        waited = f", its hosts waiting for it {c.waits_text()} of the load" if c.waits else ""
        what = "p95 over the SLO" if slow else f"{(m.error_rate or 0) * 100:.2f} % of requests failed"
        cost = "the latency of one request" if slow else "requests failing"
        text = (
            f"{what} at {m.rate:g}/s with {c.text()} {c.pct:.0f} % busy{waited}, "
            f"no stage full: {cost} on this path, not the load"
        )
        found.append(("the path itself", text))
    if not found:  # only async has a queue whose backlog could have said more
        checked = "no host >= 90 % CPU, no stage saturated" + (", no backlog" if m.mode == "async" else "")
        busiest = [
            f"busiest: CPU {c.cpus} ({', '.join(c.hosts)}) {c.pct:.0f} %"
            + ("" if c.peak is None else f", {c.peak:.0f} % in its busiest second")
            for c in shared_use[:1]
        ]
        return [f"{checked}: not identified", *busiest], None, False
    bottleneck = found[0][0]
    return [text for _, text in found], bottleneck, bottleneck in ("loadgen", "client")
