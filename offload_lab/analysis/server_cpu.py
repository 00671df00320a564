"""The servers' CPU: broker, gateway and core together (on the lab they share CPU 0), in the two
forms a step records it.

- over the step: the hosts' counters read before and after it (`hosts`), an average over the
  step's whole window, which also holds the seconds after the load (the core finishing its
  last tasks, the drain): what the overhead tables compare, series against series, since it
  exists whether host sampling was on or off;
- during the load: the median, over the seconds of the load, of the per-second sums
  (`hosts_timeline`, host sampling on): how busy CPU 0 is while the requests are measured, the
  headroom figure of the seed table. On the seed's async 400/s steps it was 5-6 points above
  the step's average (docs/measurement.md, "Headroom")."""

from __future__ import annotations

import statistics
from typing import Any

SERVER_GROUPS = ("broker", "gateway", "core")


def servers_cpu(hosts: dict[str, Any] | None) -> float | None:
    """The sum of the server hosts' CPU % over the step (None: not recorded)."""
    values = [h.get("cpu_pct") for h in (hosts or {}).values() if h.get("group") in SERVER_GROUPS]
    values = [v for v in values if isinstance(v, int | float)]
    return round(sum(values), 1) if values else None


def servers_cpu_during_load(
    hosts: dict[str, Any] | None,
    timeline: dict[str, Any] | None,
    load_window: tuple[float, float] | None,
) -> float | None:
    """The median, over the readings that fall inside the load, of the server hosts' summed
    CPU %. A reading at t covers the interval before t; t and `load_window` (start, end) count
    seconds on the step's time axis (clock.t0_unix_s). The first reading is kept when the load
    started less than a tenth of an interval after it began (the sweep starts both together).
    None without a timeline (host sampling off) or without a reading of every server host
    inside the load."""
    servers = sorted(name for name, h in (hosts or {}).items() if h.get("group") in SERVER_GROUPS)
    if not servers or load_window is None:
        return None
    start, end = load_window
    interval = float((timeline or {}).get("interval_s") or 1.0)
    sums = []
    for reading in readings_within((timeline or {}).get("samples"), start + 0.9 * interval, end + 1e-6):
        values = [reading.get(name) for name in servers]
        if all(isinstance(v, int | float) for v in values):
            sums.append(sum(values))
    return round(statistics.median(sums), 1) if sums else None


def readings_within(samples: Any, lo: float | None = None, hi: float | None = None) -> list[dict[str, Any]]:
    """The per-host readings of a hosts_timeline series (`[t, {host: value}]`) with lo <= t <= hi
    (None: no bound), in order; malformed entries are left out."""
    out = []
    for sample in samples if isinstance(samples, list) else []:
        if not isinstance(sample, list) or len(sample) < 2 or not isinstance(sample[0], int | float):
            continue
        t, per_host = sample[0], sample[1]
        if (lo is not None and t < lo) or (hi is not None and t > hi) or not isinstance(per_host, dict):
            continue
        out.append(per_host)
    return out


def clock_window(clock: dict[str, Any] | None) -> tuple[float, float] | None:
    """The load's (start, end) on the step's time axis (clock.t0_unix_s), None without a clock."""
    clock = clock or {}
    t0, started, ended = (clock.get(k) for k in ("t0_unix_s", "load_started_unix_s", "load_ended_unix_s"))
    if all(isinstance(v, int | float) for v in (t0, started, ended)):
        return started - t0, ended - t0
    return None


def load_window(clock: dict[str, Any] | None, duration_s: float) -> tuple[float, float]:
    """The load's (start, end) on the step's time axis: from its clock, else 0 and the duration."""
    return clock_window(clock) or (0.0, float(duration_s))
