"""Command-line overrides of a sweep spec (`fab sweep --rates 50,100 --duration 10 ...`): which
option sets which spec key, and how its text becomes a typed value. The spec validates the
values like any other (offload_lab.spec.apply_overrides)."""

from __future__ import annotations

from typing import Any

from .spec import SpecError

# command-line option -> spec key
OVERRIDE_OPTIONS = {
    "rates": "rates",
    "duration": "duration_s",
    "max_vus": "max_vus",
    "pre_vus": "pre_allocated_vus",
    "modes": "modes",
    "work_ms": "work_ms",
    "order": "order",
    "cooldown": "cooldown_s",
    "drain_timeout": "drain_timeout_s",
    "gateway": "gateway",
    "repeat": "repeat",
}

# spec key -> the option that sets it, to name the option in a problem ("duration_s (--duration)")
OPTION_FOR_KEY = {key: "--" + option.replace("_", "-") for option, key in OVERRIDE_OPTIONS.items()}


def parse_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Turn command-line strings (option name -> string or None) into typed spec values.

    Raises SpecError naming each bad option. Options left None are not overrides.
    """
    problems: list[str] = []
    out: dict[str, Any] = {}
    for opt, value in options.items():
        if value is None or value == "":
            continue
        if opt not in OVERRIDE_OPTIONS:
            problems.append(f"--{opt.replace('_', '-')}: not an override option")
            continue
        key = OVERRIDE_OPTIONS[opt]
        flag = f"--{opt.replace('_', '-')}"
        text = str(value).strip()
        try:
            if key == "rates":
                out[key] = _parse_rates(text)
            elif key == "modes":
                out[key] = [m.strip() for m in text.split(",") if m.strip()]
            elif key == "order":
                out[key] = text
            elif key == "gateway":
                out[key] = _parse_settings(text)
            elif key == "duration_s":
                out[key] = _parse_int(text.removesuffix("s"))
            elif key == "repeat":
                out[key] = _parse_int(text)
            elif key in ("cooldown_s", "drain_timeout_s"):
                out[key] = _parse_number(text.removesuffix("s"))
            else:
                out[key] = _parse_int(text)
        except ValueError as exc:
            problems.append(f"{flag}: {exc}")
    if problems:
        raise SpecError(problems, "command line")
    return out


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"must be an integer, got {text!r}") from None


def _parse_number(text: str) -> float | int:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"must be a number, got {text!r}") from None


def _parse_rates(text: str) -> Any:
    """`50,100,150` or a range `50:400:50` (from:to:step)."""
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"a range is FROM:TO:STEP, got {text!r}")
        lo, hi, step = (_parse_int(p) for p in parts)
        return {"from": lo, "to": hi, "step": step}
    items = [p.strip() for p in text.split(",") if p.strip()]
    if not items:
        raise ValueError("no rates given")
    return [_parse_int(p) for p in items]


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
