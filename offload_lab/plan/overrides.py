"""The options that override a sweep spec's keys, and `fab capacity`'s search options, in one
place: which key each sets, how its text becomes a typed value, and the one-line help each
option's text is built from (offload_lab.cli.task_help shows it). The options are the field
tables' (offload_lab/plan/spec_fields.py, capacity_fields.py); the spec validates override
values like any other (offload_lab.plan.spec.apply_overrides)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .core_spec import CORE_KEYS
from .gateway_spec import GATEWAY_KEYS
from .instruments import KEYS as INSTRUMENT_KEYS
from .spec import SpecError
from .spec_fields import FIELDS as SPEC_FIELDS
from .spec_fields import SpecField


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
class OptionText:
    """What an option's text looks like (for --help) and how it becomes a value."""

    kind: str
    parse: Callable[[str], Any]


# spec_fields.TYPES other than numbers -> how an option's text gives a value of that type
_TEXT_BY_TYPE = {
    "rates": OptionText("list or range FROM:TO:STEP", _parse_rates),
    "modes": OptionText("list", _parse_list),
    "choice": OptionText("name", str),
    "gateway": OptionText("KEY=VALUE,...", _parse_settings),
    "core": OptionText("KEY=VALUE,...", _parse_core_settings),
    "instruments": OptionText("KEY=VALUE,...", _parse_settings),
}
# the names a settings option takes, for its help (a choice's: its choices)
_SETTING_NAMES = {"gateway": GATEWAY_KEYS, "core": CORE_KEYS, "instruments": INSTRUMENT_KEYS}


def option_text(spec_field: SpecField) -> OptionText:
    """How the option of a field (spec_fields, capacity_fields) reads its text: a number of
    seconds may end in `s`."""
    unit = spec_field.unit
    if spec_field.type == "int":
        return OptionText(f"integer {unit}".rstrip(), parse_whole_seconds if unit == "s" else parse_int)
    if spec_field.type == "number":
        return OptionText(f"number {unit}".rstrip(), _parse_seconds if unit == "s" else parse_number)
    return _TEXT_BY_TYPE[spec_field.type]


def option_help(spec_field: SpecField, default: str) -> str:
    """The help of a field's option as `fab --help TASK` shows it: what, type, example, default."""
    names = _SETTING_NAMES.get(spec_field.type, spec_field.choices)
    kind = option_text(spec_field).kind + (f": {', '.join(names)}" if names else "")
    return f"{spec_field.help} ({kind}; e.g. {spec_field.option_example}; default: {default})"


# option (as the fabfile's task argument) -> the spec key it overrides; unset options keep the
# spec's value
OVERRIDES: dict[str, SpecField] = {f.option: f for f in SPEC_FIELDS if f.option}


def flag(option: str) -> str:
    """The command-line spelling of a task argument: max_vus -> --max-vus."""
    return "--" + option.replace("_", "-")


# spec key -> the option that sets it, to name the option in a problem ("duration_s (--duration)")
OPTION_FOR_KEY = {f.key: flag(option) for option, f in OVERRIDES.items()}


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
        spec_field = OVERRIDES[option]
        try:
            out[spec_field.key] = option_text(spec_field).parse(str(value).strip())
        except ValueError as exc:
            problems.append(f"{flag(option)}: {exc}")
    if problems:
        raise SpecError(problems, "command line")
    return out
