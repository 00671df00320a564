"""Core settings a sweep spec may switch (`core:`, per sweep or per series): their names, defaults
and ranges, the check of a spec's `core:` mapping, and what a core runs with during a step.
offload_lab.services.core switches them on the core hosts.

The names, defaults and limits are the core's own (core-go/internal/config: Defaults,
MaxPrefetch, MaxRetryDelays, MaxRetryDelayMS, MaxRetryQueueLength, Validate);
tests/sweep/test_core_settings.py and test_core_failure_settings.py check that they agree. The
kinds of value (an integer range, a fraction, a list of delays) are in offload_lab.plan.core_values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .core_values import Delays, Fraction, IntRange, Kind

# RETRY_DELAYS_MS: each delay 1 ms .. 1 h, at most 10 of them (so at most 11 attempts)
MAX_RETRY_DELAY_MS = 3_600_000
MAX_RETRY_DELAYS = 10


@dataclass(frozen=True)
class CoreSetting:
    name: str  # the environment variable
    default: str  # the core's own default (config.Defaults), as the environment spells it
    kind: Kind  # what values a spec may set (offload_lab.plan.core_values)
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


# the ledger's destination, switched through the spec's `instruments:` (offload_lab.plan.instruments),
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
