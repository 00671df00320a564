"""The command-line options that override a sweep spec's keys, in one place: which spec key each
sets, how its text becomes a typed value, and what its help says (offload_lab.cli.task_help shows
it). The spec validates override values like any other (offload_lab.plan.spec.apply_overrides)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .spec import SpecError


def parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"must be an integer, got {text!r}") from None


def parse_number(text: str) -> float | int:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"must be a number, got {text!r}") from None


def _parse_seconds(text: str) -> float | int:
    return parse_number(text.removesuffix("s"))


def parse_whole_seconds(text: str) -> int:
    return parse_int(text.removesuffix("s"))


def _parse_rates(text: str) -> Any:
    """`50,100,150` or a range `50:400:50` (from:to:step)."""
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"a range is FROM:TO:STEP, got {text!r}")
        lo, hi, step = (parse_int(p) for p in parts)
        return {"from": lo, "to": hi, "step": step}
    items = [p.strip() for p in text.split(",") if p.strip()]
    if not items:
        raise ValueError("no rates given")
    return [parse_int(p) for p in items]


def _parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse_settings(text: str) -> dict[str, str]:
    out = {}
    for item in text.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise ValueError(f"settings are KEY=VALUE[,KEY=VALUE], got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _parse_core_settings(text: str) -> dict[str, str]:
    """Like the gateway's KEY=VALUE,... where a list value keeps its commas: an item without `=`
    continues the value before it (`RETRY_DELAYS_MS=1000,4000,PREFETCH=100`)."""
    out: dict[str, str] = {}
    last = None
    for item in text.split(","):
        if not item.strip():
            continue
        if "=" not in item and last is not None:
            out[last] += "," + item.strip()
            continue
        if "=" not in item:
            raise ValueError(f"settings are KEY=VALUE[,KEY=VALUE], got {item!r}")
        k, v = item.split("=", 1)
        last = k.strip()
        out[last] = v.strip()
    return out


@dataclass(frozen=True)
class Override:
    """A command-line option that overrides one key of the spec."""

    key: str  # the spec key it sets
    kind: str  # what its value looks like, for --help
    parse: Callable[[str], Any]
    help: str


# option (as the fabfile's task argument) -> what it overrides; unset options keep the spec's value
OVERRIDES = {
    "rates": Override(
        "rates", "list or range", _parse_rates, "req/s per step: 50,100,150 or FROM:TO:STEP (50:400:50)"
    ),
    "duration": Override("duration_s", "integer s", parse_whole_seconds, "seconds of load per step"),
    "max_vus": Override("max_vus", "integer", parse_int, "k6 maxVUs"),
    "pre_vus": Override("pre_allocated_vus", "integer", parse_int, "k6 preAllocatedVUs"),
    "modes": Override("modes", "list", _parse_list, "sync,async or one of them"),
    "work_ms": Override("work_ms", "integer ms", parse_int, "work per request/task"),
    "order": Override("order", "name", str, "interleaved | by_mode | by_series"),
    "cooldown": Override("cooldown_s", "number s", _parse_seconds, "pause between steps"),
    "drain_timeout": Override(
        "drain_timeout_s", "number s", _parse_seconds, "longest wait for the queue to drain after a step"
    ),
    "gateway": Override(
        "gateway",
        "KEY=VALUE,...",
        _parse_settings,
        "gateway settings for every step, e.g. PUBLISHER=pika_shared",
    ),
    "core": Override(
        "core",
        "KEY=VALUE,...",
        _parse_core_settings,
        "core settings for every step, e.g. MAX_IN_FLIGHT=100 or TRANSIENT_FAIL_RATE=0.1,"
        "RETRY_DELAYS_MS=500,2000 (PREFETCH, MAX_IN_FLIGHT, WORK_MAX_CONCURRENT, TRANSIENT_FAIL_RATE, "
        "PERMANENT_FAIL_RATE, RETRY_DELAYS_MS, RETRY_QUEUE_MAX_LENGTH)",
    ),
    "instruments": Override(
        "instruments",
        "KEY=VALUE,...",
        _parse_settings,
        "the sweep's instruments for every step, e.g. ledger=off,samples=off,host_sampling_s=0 "
        "(ledger file|broker|off, samples on|off, host_sampling_s, queue_sampling_s)",
    ),
    "repeat": Override("repeat", "integer", parse_int, "run every point N times, interleaved"),
}

# option -> spec key
OVERRIDE_OPTIONS = {option: o.key for option, o in OVERRIDES.items()}


def flag(option: str) -> str:
    """The command-line spelling of a task argument: max_vus -> --max-vus."""
    return "--" + option.replace("_", "-")


# spec key -> the option that sets it, to name the option in a problem ("duration_s (--duration)")
OPTION_FOR_KEY = {o.key: flag(option) for option, o in OVERRIDES.items()}


def parse_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Turn command-line strings (option name -> string or None) into typed spec values.

    Raises SpecError naming each bad option. Options left None are not overrides.
    """
    problems: list[str] = []
    out: dict[str, Any] = {}
    for option, value in options.items():
        if value is None or value == "":
            continue
        if option not in OVERRIDES:
            problems.append(f"{flag(option)}: not an override option")
            continue
        override = OVERRIDES[option]
        try:
            out[override.key] = override.parse(str(value).strip())
        except ValueError as exc:
            problems.append(f"{flag(option)}: {exc}")
    if problems:
        raise SpecError(problems, "command line")
    return out
