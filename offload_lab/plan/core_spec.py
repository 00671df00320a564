"""Core settings a sweep spec may switch (`core:`, per sweep or per series): their names, defaults
and ranges, the check of a spec's `core:` mapping, and the switcher that writes them to
/etc/offload/core.sweep.env on every core host and restarts the core.

The names, defaults and limits are the core's own (core-go/internal/config: Defaults,
MaxPrefetch, MaxRetryDelays, MaxRetryDelayMS, MaxRetryQueueLength, Validate);
tests/sweep/test_core_settings.py and test_core_failure_settings.py check that they agree. The
kinds of value (an integer range, a fraction, a list of delays) are in offload_lab.core_values."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .core_values import Delays, Fraction, IntRange, Kind
from .remote import Remote, format_env_file

SWEEP_ENV = "/etc/offload/core.sweep.env"
UNIT = "offload-core"

# RETRY_DELAYS_MS: each delay 1 ms .. 1 h, at most 10 of them (so at most 11 attempts)
MAX_RETRY_DELAY_MS = 3_600_000
MAX_RETRY_DELAYS = 10


@dataclass(frozen=True)
class CoreSetting:
    name: str  # the environment variable
    default: str  # the core's own default (config.Defaults), as the environment spells it
    kind: Kind  # what values a spec may set (offload_lab.core_values)
    doc: str


CORE_SETTINGS: tuple[CoreSetting, ...] = (
    CoreSetting("PREFETCH", "500", IntRange(1, 65535), "unacked deliveries the consumer holds (basic.qos)"),
    CoreSetting("MAX_IN_FLIGHT", "0", IntRange(0, 65535), "tasks worked at once; 0 = PREFETCH"),
    CoreSetting(
        "WORK_MAX_CONCURRENT", "1000", IntRange(1, 100000), "POST /work served at once; beyond it 503"
    ),
    CoreSetting(
        "TRANSIENT_FAIL_RATE",
        "0",
        Fraction(),
        "chance that one attempt of a task fails transiently (a later attempt may succeed)",
    ),
    CoreSetting("PERMANENT_FAIL_RATE", "0", Fraction(), "chance that a task can never succeed"),
    CoreSetting(
        "RETRY_DELAYS_MS",
        "1000,4000,16000",
        Delays(1, MAX_RETRY_DELAY_MS, MAX_RETRY_DELAYS),
        "backoff before attempt 2, 3, ... (a delay queue each); attempts = delays + 1; empty = no retry",
    ),
    CoreSetting(
        "RETRY_QUEUE_MAX_LENGTH",
        "100000",
        IntRange(1, 10_000_000),
        "x-max-length of each delay queue; a full one refuses the retry, the task is dead-lettered",
    ),
)
CORE_KEYS = tuple(s.name for s in CORE_SETTINGS)
CORE_DEFAULTS = {s.name: s.default for s in CORE_SETTINGS}
_BY_NAME = {s.name: s for s in CORE_SETTINGS}


def validate_core(problems: list[str], key: str, value: Any) -> dict[str, str] | None:
    """A spec's `core:` mapping as env-file text values, or None after appending its problems."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{key}: must be a mapping of core settings, got {value!r}")
        return None
    out: dict[str, str] = {}
    ok = True
    for name, v in value.items():
        setting = _BY_NAME.get(name)
        if setting is None:
            problems.append(f"{key}.{name}: unknown core setting (known: {', '.join(CORE_KEYS)})")
            ok = False
            continue
        text = setting.kind.check(problems, f"{key}.{name}", v)
        if text is None:
            ok = False
        else:
            out[name] = text
    return out if ok else None


# the ledger's destination, switched through the spec's `instruments:` (offload_lab.instruments),
# with the binary's default
LEDGER = "LEDGER"
LEDGER_DEFAULT = "broker"


def effective_core(provisioned: dict[str, str], step_settings: dict[str, str]) -> dict[str, str]:
    """What one core runs with during a step: the core's defaults < core.env < the step's."""
    base = {**CORE_DEFAULTS, LEDGER: LEDGER_DEFAULT}
    base.update({k: v for k, v in provisioned.items() if k in CORE_KEYS or k == LEDGER})
    return {**base, **step_settings}


def _int(settings: dict[str, str], name: str) -> int:
    """An integer setting's value (its default when unset or unreadable)."""
    default = _BY_NAME[name].default
    try:
        return int(settings.get(name) or default)
    except ValueError:
        return int(default)


def retry_delays_ms(settings: dict[str, str]) -> list[int]:
    """The backoff a core runs with (RETRY_DELAYS_MS; [] = no retry)."""
    return Delays.parse(settings.get("RETRY_DELAYS_MS", CORE_DEFAULTS["RETRY_DELAYS_MS"]))


def fail_rate(settings: dict[str, str], name: str) -> float:
    """TRANSIENT_FAIL_RATE or PERMANENT_FAIL_RATE as a number (0 when unreadable)."""
    try:
        return float(settings.get(name) or CORE_DEFAULTS[name])
    except ValueError:
        return 0.0


def retry_queue_max_length(settings: dict[str, str]) -> int:
    return _int(settings, "RETRY_QUEUE_MAX_LENGTH")


def consumer_concurrency(settings: dict[str, str]) -> int:
    """Tasks one core works at once: min(PREFETCH, MAX_IN_FLIGHT or PREFETCH)."""
    prefetch = _int(settings, "PREFETCH")
    max_in_flight = _int(settings, "MAX_IN_FLIGHT") or prefetch
    return min(prefetch, max_in_flight)


def work_concurrency(settings: dict[str, str]) -> int:
    """POST /work requests one core serves at once (WORK_MAX_CONCURRENT)."""
    return _int(settings, "WORK_MAX_CONCURRENT")


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
    """Like offload_lab.gateway.GatewaySettings, for the core hosts: `apply` writes the settings
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
        shown = self.remotes[name].run(f"systemctl show {UNIT} -p EnvironmentFiles", check=False)
        if SWEEP_ENV not in shown.stdout:
            raise CoreSettingsError(
                f"{UNIT} on {name} does not read {SWEEP_ENV}: provision again "
                "(`ansible-playbook site.yml`) before switching core settings"
            )

    def _restart(self, name: str) -> None:
        self.remotes[name].run(f"systemctl restart {UNIT}", timeout=120, sudo=True)
        url = f"{self.base_urls[name]}/healthz"
        deadline = self.clock() + self.health_timeout_s
        while not self.healthy(url):
            if self.clock() >= deadline:
                raise CoreSettingsError(
                    f"core {url} did not answer status ok within {self.health_timeout_s} s after a "
                    f"restart (see `journalctl -u {UNIT}` on {name})"
                )
            self.sleep(0.2)
