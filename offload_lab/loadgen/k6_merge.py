"""One step's results from N load generators, as if one k6 had run it.

- Execution segments: generator i of N runs segment i/N:(i+1)/N of one shared sequence, so k6
  itself splits the rate, the VUs and the iteration numbers (docs/design.md, "Several load
  generators").
- Summaries: counters summed; rate metrics' passes and fails summed and their rate recomputed;
  gauges summed (VUs of all generators); http_req_duration recomputed from the merged
  per-request samples (never averaged: `with_sample_trend`); other trends keep only what
  combines exactly (min, max, count-weighted avg), their percentiles are left out.
- Samples: the generators' files concatenated, with a last column naming the generator.
- Flags: a generator that started late, ran short of VUs, or of CPU.
Each generator's own summary is kept in the merged one (`offload.generators`).
"""

from __future__ import annotations

import gzip
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..analysis.metrics import LOADGEN_SATURATED_PCT
from ..analysis.samples import GENERATOR_COLUMN, REQUEST_METRIC, Samples, latency_stats, percentile

LATE_START_S = 0.5  # a generator whose first request came later than this (beyond its stripe) is late
TREND_FROM_SAMPLES = REQUEST_METRIC  # the one trend with per-request samples


def _fraction(f: Fraction) -> str:
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def segment_sequence(n: int) -> str:
    """k6's --execution-segment-sequence for n equal segments, e.g. "0,1/2,1"."""
    if n < 1:
        raise ValueError(f"need at least one load generator, got {n}")
    return ",".join(_fraction(Fraction(i, n)) for i in range(n + 1))


def execution_segment(index: int, n: int) -> str:
    """k6's --execution-segment of generator `index` (0-based) of n, e.g. "1/2:1"."""
    if not 0 <= index < n:
        raise ValueError(f"generator {index} is not one of 0..{n - 1}")
    return f"{_fraction(Fraction(index, n))}:{_fraction(Fraction(index + 1, n))}"


def max_vus_share(max_vus: int, index: int, n: int) -> int:
    """The VUs k6 gives generator `index` of n equal segments out of max_vus (k6 stripes them:
    5 over 3 generators is 2, 2, 1; checked against `k6 status` with k6 v1.1.0)."""
    return len(range(index, max_vus, n))


# --------------------------------------------------------------------------------------------
# summaries


def _metric_values(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return ((summary.get("metrics") or {}).get(name) or {}).get("values") or {}


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _total(values: list[Any]) -> float | int:
    nums = [v for v in (_num(x) for x in values) if v is not None]
    total = sum(nums)
    return int(total) if all(isinstance(x, int) for x in values if _num(x) is not None) else total


def _merge_trend(name: str, parts: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """min, max exactly; avg weighted by each generator's requests (http_req_*) or iterations;
    percentiles left out: they cannot be combined from summaries."""
    weight_metric = "http_reqs" if name.startswith("http_req") else "iterations"
    mins = [v for v in (_num(values.get("min")) for values, _ in parts) if v is not None]
    maxes = [v for v in (_num(values.get("max")) for values, _ in parts) if v is not None]
    weighted = [
        (_num(values.get("avg")), _num(_metric_values(summary, weight_metric).get("count")) or 0.0)
        for values, summary in parts
    ]
    weight = sum(w for avg, w in weighted if avg is not None)
    avg = sum(avg * w for avg, w in weighted if avg is not None) / weight if weight else None
    out: dict[str, Any] = {key: None for values, _ in parts for key in values}
    out.update({"avg": avg, "min": min(mins) if mins else None, "max": max(maxes) if maxes else None})
    return out


def merge_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The k6 summaries of N generators as one summary in k6's shape (see the module doc)."""
    if len(summaries) == 1:
        return summaries[0]
    first = summaries[0]
    names = list(dict.fromkeys(name for s in summaries for name in (s.get("metrics") or {})))
    metrics: dict[str, Any] = {}
    for name in names:
        present = [(_metric_values(s, name), s) for s in summaries if name in (s.get("metrics") or {})]
        meta = next(s["metrics"][name] for s in summaries if name in (s.get("metrics") or {}))
        kind = meta.get("type")
        values_list = [v for v, _ in present]
        if kind == "counter":
            values = {"count": _total([v.get("count") for v in values_list])}
            values["rate"] = _total([v.get("rate") for v in values_list])
        elif kind == "rate":
            passes = _total([v.get("passes") for v in values_list])
            fails = _total([v.get("fails") for v in values_list])
            values = {
                "passes": passes,
                "fails": fails,
                "rate": passes / (passes + fails) if passes + fails else 0,
            }
        elif kind == "gauge":
            values = {key: _total([v.get(key) for v in values_list]) for key in ("value", "min", "max")}
        elif kind == "trend":
            values = _merge_trend(name, present)
        else:
            values = {}
        metrics[name] = {**{k: v for k, v in meta.items() if k != "values"}, "values": values}
    durations = [_num((s.get("state") or {}).get("testRunDurationMs")) for s in summaries]
    state = {**(first.get("state") or {})}
    if any(d is not None for d in durations):
        state["testRunDurationMs"] = max(d for d in durations if d is not None)
    merged = {key: value for key, value in first.items() if key not in ("metrics", "state", "root_group")}
    merged.update({"metrics": metrics, "state": state})
    merged["offload"] = {**(first.get("offload") or {})}
    return merged


def trend_from_samples(samples: Samples) -> dict[str, float | None]:
    """http_req_duration's summary values (summaryTrendStats of k6/loadtest.js) from samples."""
    stats = latency_stats(samples)
    return {
        "avg": stats["avg"],
        "min": stats["min"],
        "med": stats["med"],
        "max": stats["max"],
        "p(90)": percentile(samples.req_ms, 90) if samples.count else None,
        "p(95)": stats["p95"],
        "p(99)": stats["p99"],
    }


def with_sample_trend(merged: dict[str, Any], samples: Samples | None) -> dict[str, Any]:
    """The merged summary with http_req_duration computed from the merged per-request samples
    (None: the samples were not kept; its percentiles stay unknown)."""
    metric = merged.setdefault("metrics", {}).setdefault(
        TREND_FROM_SAMPLES, {"type": "trend", "contains": "time"}
    )
    if samples is not None:
        metric["values"] = trend_from_samples(samples)
    merged.setdefault("offload", {})["trend_from_samples"] = samples is not None
    return merged


# --------------------------------------------------------------------------------------------
# samples


def merge_sample_files(parts: list[tuple[str, Path]], out_path: Path) -> int:
    """Concatenate the generators' samples files (.csv.gz, same header) into `out_path`, each row
    followed by its generator's name; returns the number of data rows written."""
    rows = 0
    header: str | None = None
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out_path, "wt", encoding="utf-8", newline="") as out:
        for name, path in parts:
            with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
                first = fh.readline().rstrip("\r\n")
                if header is None:
                    header = first
                    out.write(f"{header},{GENERATOR_COLUMN}\n")
                elif first != header:
                    raise ValueError(f"samples of {name}: header {first!r} differs from {header!r}")
                for line in fh:
                    line = line.rstrip("\r\n")
                    if line:
                        out.write(f"{line},{name}\n")
                        rows += 1
    return rows


# --------------------------------------------------------------------------------------------
# flags


def _first_request_starts(samples: Samples) -> dict[str, float]:
    if samples.req_generator is None or not samples.count:
        return {}
    starts = samples.req_start_s
    out: dict[str, float] = {}
    for code, name in enumerate(samples.generators):
        mine = starts[samples.req_generator == code]
        if mine.size:
            out[name] = float(mine.min())
    return out


def vus_short(summary: dict[str, Any], max_vus_share_: int | None) -> bool:
    """Dropped iterations, or every VU k6 could have busy at once (vus max = vus_max = the cap)."""
    if (_num(_metric_values(summary, "dropped_iterations").get("count")) or 0) > 0:
        return True
    busy = _num(_metric_values(summary, "vus").get("max"))
    allocated = _num(_metric_values(summary, "vus_max").get("max"))
    if busy is None or allocated is None or max_vus_share_ is None:
        return False
    return busy >= allocated >= max_vus_share_


def flag_generators(
    merged: dict[str, Any],
    samples: Samples | None,
    hosts: dict[str, dict[str, Any]],
    rate: float,
    max_vus: int | None,
) -> list[str]:
    """Mark each generator (merged["offload"]["generators"]) late, VU-short or CPU-short and
    return "host: flag" lines. Late: its first request (from the samples; else when it was
    resumed) began more than LATE_START_S after the earliest, beyond its stripe's own offset
    (k6 gives generator i of N iterations i, i+N, ...: its first starts i/rate later). When a
    generator has no request in the samples, all are compared by their resume times."""
    generators = (merged.get("offload") or {}).get("generators") or []
    n = len(generators)
    firsts = _first_request_starts(samples) if samples is not None else {}
    for g in generators:
        start = firsts.get(g["host"])
        g["first_request_unix_s"] = round(start, 3) if start is not None else None
    origin: dict[str, float] = {}
    if firsts and len(firsts) == n:
        origin = {
            g["host"]: firsts[g["host"]] - (i / rate if rate else 0.0) for i, g in enumerate(generators)
        }
    else:
        resumed = {g["host"]: _num(g.get("resumed_unix_s")) for g in generators}
        origin = {host: t for host, t in resumed.items() if t is not None}
    earliest = min(origin.values()) if origin else None
    lines: list[str] = []
    for i, g in enumerate(generators):
        flags: list[str] = []
        late = origin[g["host"]] - earliest if g["host"] in origin and earliest is not None else None
        g["start_offset_s"] = round(late, 3) if late is not None else None
        if late is not None and late > LATE_START_S:
            flags.append("late_start")
        share = max_vus_share(max_vus, i, n) if max_vus else None
        if vus_short(g.get("summary") or {}, share):
            flags.append("vus_short")
        cpu = _num((hosts.get(g["host"]) or {}).get("cpu_pct"))
        if cpu is not None and cpu > LOADGEN_SATURATED_PCT:
            flags.append("cpu_short")
        g["flags"] = flags
        lines.extend(f"{g['host']}: {flag}" for flag in flags)
    merged.setdefault("offload", {})["flagged"] = lines
    return lines
