"""The core as the controller drives it: its stats endpoints (`GET /stats`, `POST /stats/reset`),
summed over several core hosts, and its settings switched for a step (/etc/offload/core.sweep.env
+ a restart on every core host; offload_lab.plan.core_spec says which settings a spec may set)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..hosts.lab_names import CORE_UNIT
from ..hosts.remote import Remote, format_env_file

SWEEP_ENV = "/etc/offload/core.sweep.env"

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


# --------------------------------------------------------------------------------------------
# switching: /etc/offload/core.sweep.env + a restart on every core host


class CoreSettingsError(RuntimeError):
    pass


def core_healthy(url: str, timeout: float = 2) -> bool:
    """The core answers /healthz with status "ok": HTTP up and its consumer connected."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300 and json.loads(resp.read() or b"{}").get("status") == "ok"
    except Exception:
        return False


class CoreSettings:
    """Like offload_lab.services.gateway.GatewaySettings, for the core hosts: `apply` writes the settings
    (root's file, so as root) and restarts every core only when they change; `restore` removes
    the file so the cores run with their provisioned settings again."""

    def __init__(
        self,
        remotes: dict[str, Remote],
        base_urls: dict[str, str],
        health_timeout_s: float = 60,
        healthy: Callable[[str], bool] = core_healthy,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.remotes = remotes  # core host name -> its Remote
        self.base_urls = {name: url.rstrip("/") for name, url in base_urls.items()}
        self.health_timeout_s = health_timeout_s
        self.healthy = healthy
        self.sleep = sleep
        self.clock = clock
        self.current: dict[str, str] = {}  # what the sweep file holds ({} = provisioned settings)

    def begin(self) -> None:
        """Start from the provisioned settings: a file left by an earlier, killed sweep goes."""
        for name, remote in self.remotes.items():
            if remote.run(f"test -e {SWEEP_ENV}", check=False, sudo=True).ok:
                remote.run(f"rm -f {SWEEP_ENV}", sudo=True)
                self._restart(name)
        self.current = {}

    def apply(self, settings: dict[str, str]) -> bool:
        """Make every core run with `settings` over its provisioned ones; True if they restarted."""
        settings = dict(settings)
        if settings == self.current:
            return False
        for name, remote in self.remotes.items():
            if settings:
                self._check_unit_reads_sweep_env(name)
                remote.put_text(format_env_file(settings), SWEEP_ENV, mode="0644", sudo=True)
            else:
                remote.run(f"rm -f {SWEEP_ENV}", sudo=True)
            self._restart(name)
        self.current = settings
        return True

    def restore(self) -> bool:
        return self.apply({})

    def restart(self) -> None:
        """Restart every core with the current settings (fresh connections after a broker restart)."""
        for name in self.remotes:
            self._restart(name)

    def _check_unit_reads_sweep_env(self, name: str) -> None:
        """A unit provisioned before core.sweep.env existed would ignore the file: say so instead."""
        shown = self.remotes[name].run(f"systemctl show {CORE_UNIT} -p EnvironmentFiles", check=False)
        if SWEEP_ENV not in shown.stdout:
            raise CoreSettingsError(
                f"{CORE_UNIT} on {name} does not read {SWEEP_ENV}: provision again "
                "(`ansible-playbook site.yml`) before switching core settings"
            )

    def _restart(self, name: str) -> None:
        self.remotes[name].run(f"systemctl restart {CORE_UNIT}", timeout=120, sudo=True)
        url = f"{self.base_urls[name]}/healthz"
        deadline = self.clock() + self.health_timeout_s
        while not self.healthy(url):
            if self.clock() >= deadline:
                raise CoreSettingsError(
                    f"core {url} did not answer status ok within {self.health_timeout_s} s after a "
                    f"restart (see `journalctl -u {CORE_UNIT}` on {name})"
                )
            self.sleep(0.2)
