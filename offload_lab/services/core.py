"""The core's stats endpoints (`GET /stats`, `POST /stats/reset`), summed over several core hosts."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

COUNTERS = ("received", "completed", "failed", "dead_lettered", "redelivered", "in_flight", "work_requests")


class CoreError(RuntimeError):
    pass


def http_json(
    method: str, url: str, timeout: float = 5, body: bytes | None = None, token: str | None = None
) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = resp.read()
            return json.loads(data) if data else None
    except Exception as exc:
        raise CoreError(f"{method} {url}: {exc}") from exc


def merge_stats(per_host: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Sum counters over hosts. Latency: count and avg combine exactly; percentiles and max take the
    worst host (an upper bound; exact when there is one core host). Per-host stats are kept."""
    hosts = {k: v for k, v in per_host.items() if v is not None}
    out: dict[str, Any] = {c: sum(int(s.get(c) or 0) for s in hosts.values()) for c in COUNTERS}
    lat = [s.get("completion_latency_ms") or {} for s in hosts.values()]
    count = sum(int(x.get("count") or 0) for x in lat)
    merged: dict[str, Any] = {"count": count}
    merged["avg"] = (sum((x.get("avg") or 0) * (x.get("count") or 0) for x in lat) / count) if count else 0
    for p in ("p50", "p95", "p99", "max"):
        vals = [x.get(p) for x in lat if (x.get("count") or 0) > 0 and x.get(p) is not None]
        merged[p] = max(vals) if vals else 0
    if len(hosts) > 1:
        merged["percentiles_of"] = "the highest host"  # /stats has no samples to merge
    out["completion_latency_ms"] = merged
    out["last_done_at_ns"] = max((int(s.get("last_done_at_ns") or 0) for s in hosts.values()), default=0)
    sinces = [s.get("since") for s in hosts.values() if s.get("since")]
    out["since"] = min(sinces) if sinces else None
    if len(per_host) > 1:
        out["per_host"] = per_host
    return out


class CoreStats:
    def __init__(self, urls: dict[str, str], timeout: float = 5, reset_token: str | None = None):
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}  # host name -> http://addr:8080
        self.timeout = timeout
        self.reset_token = reset_token  # the core refuses /stats/reset without it

    def _each(self, fn):
        with ThreadPoolExecutor(max_workers=max(1, len(self.urls))) as pool:
            futures = {name: pool.submit(fn, url) for name, url in self.urls.items()}
            return {name: f.result() for name, f in futures.items()}

    def reset(self) -> None:
        self._each(lambda url: http_json("POST", f"{url}/stats/reset", self.timeout, b"", self.reset_token))

    def read(self) -> dict[str, Any]:
        return merge_stats(self._each(lambda url: http_json("GET", f"{url}/stats", self.timeout)))

    def idle(self) -> bool:
        """Nothing in flight on any core host."""
        return self.read()["in_flight"] == 0
