"""Per-request samples of one step (docs/result-format.md, "Per-second evidence").

`samples/<step stem>.csv.gz` holds k6's own CSV output filtered on the loadgen to
`metric_name,timestamp,metric_value,expected_response,status` for three metrics:
- http_req_duration: one row per request; timestamp = the request's END (response received or
  timed out), unix ms, truncated; value = duration in ms (k6's sending + waiting + receiving,
  so without connection setup); expected_response "true"/"false"; status "" or 0 on timeouts.
- dropped_iterations: one row per iteration k6 could not start (no free VU).
- vus: k6's active VU count, about once a second.
With several load generators the step's file is their files merged, with a last column
`generator` (the loadgen host that wrote the row); the VU count of a second is then the sum of
each generator's own.

Percentiles are computed exactly as k6 computes its summary (metrics.TrendSink.P): sort, take
position q/100 x (n-1) and interpolate linearly between its neighbours. The mean is the running
sum in file order / n, as k6 sums. So the figures agree with k6's summary within rounding.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REQUEST_METRIC = "http_req_duration"
COLUMNS = ("metric_name", "timestamp", "metric_value", "expected_response", "status")
GENERATOR_COLUMN = "generator"  # only in the merged samples of several load generators


class SamplesError(ValueError):
    """The samples file cannot be read (missing columns, not CSV, not gzip, ...)."""


@dataclass
class Samples:
    req_end_s: np.ndarray  # float64, unix s: when each request ended
    req_ms: np.ndarray  # float64, http_req_duration in ms
    req_ok: np.ndarray  # bool, expected_response == "true"
    req_status: np.ndarray  # int32, HTTP status (0: none, e.g. a timeout)
    dropped_s: np.ndarray  # float64, unix s of each dropped iteration
    vus_s: np.ndarray  # float64, unix s of each vus sample
    vus: np.ndarray  # float64, the VU count then
    bad_rows: int = 0  # rows that could not be parsed (skipped)
    # several load generators: their names, and each request's / vus sample's index into them
    generators: tuple[str, ...] = ()
    req_generator: np.ndarray | None = None  # int32
    vus_generator: np.ndarray | None = None  # int32

    @property
    def count(self) -> int:
        return int(self.req_ms.size)

    @property
    def req_start_s(self) -> np.ndarray:
        """When each request started (end - duration), unix s."""
        return self.req_end_s - self.req_ms / 1000.0

    @property
    def failed(self) -> int:
        return int(self.count - np.count_nonzero(self.req_ok))


def _parse_rows(text: io.TextIOBase) -> Samples:
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise SamplesError("empty file (no header)") from None
    except csv.Error as exc:
        raise SamplesError(f"not CSV: {exc}") from exc
    index = {name.strip(): i for i, name in enumerate(header)}
    missing = [c for c in COLUMNS if c not in index]
    if missing:
        raise SamplesError(f"header lacks {', '.join(missing)}: {','.join(header)[:200]}")
    im, it, iv, ie, ist = (index[c] for c in COLUMNS)
    ig = index.get(GENERATOR_COLUMN)
    width = max(im, it, iv, ie, ist, -1 if ig is None else ig) + 1
    generators: dict[str, int] = {}
    req_gen: list[int] = []
    vus_gen: list[int] = []

    req_end: list[float] = []
    req_ms: list[float] = []
    req_ok: list[bool] = []
    req_status: list[int] = []
    dropped: list[float] = []
    vus_t: list[float] = []
    vus_n: list[float] = []
    bad = 0
    try:
        for row in reader:
            if len(row) < width:
                if row:
                    bad += 1
                continue
            name = row[im]
            try:
                if name == REQUEST_METRIC:
                    ts = int(row[it]) / 1000.0
                    value = float(row[iv])
                    status = row[ist]
                    req_status.append(int(status) if status else 0)
                    req_end.append(ts)
                    req_ms.append(value)
                    req_ok.append(row[ie] == "true")
                    if ig is not None:
                        req_gen.append(generators.setdefault(row[ig], len(generators)))
                elif name == "dropped_iterations":
                    # a counter sample: value = how many (always 1 in k6's output)
                    ts = int(row[it]) / 1000.0
                    dropped.extend([ts] * max(1, int(round(float(row[iv] or 1)))))
                elif name == "vus":
                    ts = int(row[it]) / 1000.0
                    vus_n.append(float(row[iv]))
                    vus_t.append(ts)
                    if ig is not None:
                        vus_gen.append(generators.setdefault(row[ig], len(generators)))
            except ValueError:
                bad += 1
    except csv.Error as exc:
        raise SamplesError(f"not CSV: {exc}") from exc
    return Samples(
        req_end_s=np.asarray(req_end, dtype=np.float64),
        req_ms=np.asarray(req_ms, dtype=np.float64),
        req_ok=np.asarray(req_ok, dtype=bool),
        req_status=np.asarray(req_status, dtype=np.int32),
        dropped_s=np.asarray(dropped, dtype=np.float64),
        vus_s=np.asarray(vus_t, dtype=np.float64),
        vus=np.asarray(vus_n, dtype=np.float64),
        bad_rows=bad,
        generators=tuple(generators),
        req_generator=np.asarray(req_gen, dtype=np.int32) if ig is not None else None,
        vus_generator=np.asarray(vus_gen, dtype=np.int32) if ig is not None else None,
    )


def read_samples(path: str | Path) -> Samples:
    """Read a samples .csv.gz (a plain .csv is read too). Raises SamplesError / OSError."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", newline="", encoding="utf-8") as fh:
                return _parse_rows(fh)
        with path.open(newline="", encoding="utf-8") as fh:
            return _parse_rows(fh)
    except (gzip.BadGzipFile, EOFError, UnicodeDecodeError) as exc:
        raise SamplesError(f"{path.name}: unreadable ({exc})") from exc


# --------------------------------------------------------------------------------------------
# statistics


def _k6_p(sorted_values: np.ndarray, q: float) -> float:
    """k6's TrendSink.P on values already sorted (n >= 1); q in percent."""
    n = sorted_values.size
    if n == 1:
        return float(sorted_values[0])
    i = (q / 100) * (n - 1.0)
    lo = float(sorted_values[int(math.floor(i))])
    hi = float(sorted_values[int(math.ceil(i))])
    return lo + (hi - lo) * (i - math.floor(i))


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float | None:
    """The q-th percentile (q in 0..100) as k6 computes it: sort, position q/100 x (n-1), linear
    interpolation between the two neighbours. None for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    arr = np.sort(np.asarray(values, dtype=np.float64))
    if arr.size == 0:
        return None
    return _k6_p(arr, q)


def latency_stats(samples: Samples, ok_only: bool = False) -> dict[str, float | int | None]:
    """http_req_duration avg/med/p95/p99/max (ms) and count, as in k6's summary (all requests,
    failed ones included, like k6's http_req_duration; ok_only: successful ones only)."""
    values = samples.req_ms[samples.req_ok] if ok_only else samples.req_ms
    n = int(values.size)
    if n == 0:
        return {"avg": None, "med": None, "p95": None, "p99": None, "max": None, "min": None, "count": 0}
    ordered = np.sort(values)
    # k6 keeps a running float sum in arrival order; cumsum sums in the same order (np.sum would
    # sum pairwise and can differ in the last bits)
    total = float(np.cumsum(values)[-1])
    return {
        "avg": total / n,
        "med": _k6_p(ordered, 50),
        "p95": _k6_p(ordered, 95),
        "p99": _k6_p(ordered, 99),
        "max": float(ordered[-1]),
        "min": float(ordered[0]),
        "count": n,
    }


# --------------------------------------------------------------------------------------------
# second by second


@dataclass
class PerSecond:
    """Per whole second since t0: arrays of equal length; second k covers [t0 + k, t0 + k + 1)."""

    t: np.ndarray  # float64: k (the second's start, s since t0)
    started: np.ndarray  # int: requests that started (end - duration) in the second
    ok: np.ndarray  # int: successful responses (expected_response true) ending in the second
    failed: np.ndarray  # int: failed requests (unexpected status, timeouts) ending in the second
    dropped: np.ndarray  # int: iterations k6 dropped (no free VU) in the second
    p50: np.ndarray  # float64 ms, latency of the requests ending in the second; NaN if none
    p95: np.ndarray
    p99: np.ndarray
    offered: np.ndarray  # float64: configured rate x the part of the second inside the load window
    vus: np.ndarray  # float64: highest k6 VU count sampled in the second; NaN if none
    outside: int = 0  # events before t0 (left out)

    @property
    def attempted(self) -> np.ndarray:
        """Iterations k6 tried to start: started requests + dropped iterations."""
        return self.started + self.dropped

    def __len__(self) -> int:
        return int(self.t.size)


def _bucket(times_s: np.ndarray, t0: float) -> np.ndarray:
    return np.floor(times_s - t0).astype(np.int64)


def _counts(buckets: np.ndarray, n: int) -> np.ndarray:
    buckets = buckets[(buckets >= 0) & (buckets < n)]
    return np.bincount(buckets, minlength=n)[:n]


def _bucket_percentiles(buckets: np.ndarray, values: np.ndarray, n: int, qs: Sequence[float]):
    """k6-style percentiles of `values` grouped by bucket 0..n-1 (NaN for empty buckets)."""
    out = [np.full(n, np.nan) for _ in qs]
    keep = (buckets >= 0) & (buckets < n)
    buckets, values = buckets[keep], values[keep]
    if buckets.size == 0:
        return out
    order = np.lexsort((values, buckets))
    b, v = buckets[order], values[order]
    counts = np.bincount(b, minlength=n)[:n]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has = counts > 0
    for arr, q in zip(out, qs, strict=True):
        pos = (q / 100) * (counts[has] - 1.0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.ceil(pos).astype(np.int64)
        base = starts[has]
        vlo, vhi = v[base + lo], v[base + hi]
        arr[has] = vlo + (vhi - vlo) * (pos - lo)
    return out


def per_second(
    samples: Samples,
    t0_unix_s: float,
    load_started_unix_s: float | None = None,
    duration_s: float | None = None,
    rate: float | None = None,
) -> PerSecond:
    """Bucket the samples into whole seconds since t0 (the step's time axis, clock.t0_unix_s).

    Requests count as started at end - duration and as ok/failed at their end; the latency
    percentiles of a second are those of the requests ending in it. `offered` is the configured
    `rate` over the load window [load_started, load_started + duration_s) (each second gets
    rate x its overlap with the window); NaN throughout when rate or the window is unknown.
    Events before t0 are left out (counted in `outside`).
    """
    starts = samples.req_start_s
    ends = samples.req_end_s
    last = [float(x.max()) for x in (ends, samples.dropped_s, samples.vus_s) if x.size]
    n = int(math.floor(max(last) - t0_unix_s)) + 1 if last else 0
    window_end = None
    if load_started_unix_s is not None and duration_s is not None:
        window_end = load_started_unix_s + duration_s
        n = max(n, int(math.ceil(window_end - t0_unix_s)))
    n = max(0, n)

    b_start = _bucket(starts, t0_unix_s)
    b_end = _bucket(ends, t0_unix_s)
    b_drop = _bucket(samples.dropped_s, t0_unix_s)
    outside = int(np.count_nonzero(b_end < 0) + np.count_nonzero(b_drop < 0))

    ok = _counts(b_end[samples.req_ok], n)
    failed = _counts(b_end[~samples.req_ok], n)
    p50, p95, p99 = _bucket_percentiles(b_end, samples.req_ms, n, (50, 95, 99))

    t = np.arange(n, dtype=np.float64)
    offered = np.full(n, np.nan)
    if rate is not None and window_end is not None and load_started_unix_s is not None:
        lo = load_started_unix_s - t0_unix_s
        hi = window_end - t0_unix_s
        overlap = np.clip(np.minimum(t + 1, hi) - np.maximum(t, lo), 0.0, 1.0)
        offered = rate * overlap

    vus = np.full(n, np.nan)
    if samples.vus_s.size and n:
        b_vus = _bucket(samples.vus_s, t0_unix_s)
        keep = (b_vus >= 0) & (b_vus < n)
        gens = samples.vus_generator if samples.vus_generator is not None else np.zeros(b_vus.size, np.int32)
        # each generator's highest count in the second, summed over the generators
        highest: dict[tuple[int, int], float] = {}
        for k, g, value in zip(b_vus[keep], gens[keep], samples.vus[keep], strict=True):
            highest[(k, g)] = max(highest.get((k, g), value), value)
        for (k, _), value in highest.items():
            vus[k] = value if math.isnan(vus[k]) else vus[k] + value

    return PerSecond(
        t=t,
        started=_counts(b_start, n),
        ok=ok,
        failed=failed,
        dropped=_counts(b_drop, n),
        p50=p50,
        p95=p95,
        p99=p99,
        offered=offered,
        vus=vus,
        outside=outside,
    )
