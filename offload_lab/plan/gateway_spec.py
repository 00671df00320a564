"""Gateway settings a sweep spec may switch, per sweep or per series: their names, documented
defaults and allowed values, and the check of a spec's `gateway:` mapping.

All of it comes from the gateway's own settings table (gateway/offload_gateway/settings_table.py,
documented in docs/interfaces.md, "Gateway settings"): a setting with `sweep=True` there is one a
spec may switch, with the table's default, choices and bounds."""

from __future__ import annotations

from typing import Any

from offload_gateway.settings_table import BY_NAME, SETTINGS, Setting

from .checks import int_in, num_in

PUBLISHERS = BY_NAME["PUBLISHER"].choices
WORKER_CLASSES = BY_NAME["GUNICORN_WORKER_CLASS"].choices

# gateway settings a spec may switch per sweep or per series; values are written as KEY=VALUE
# lines into /etc/offload/gateway.sweep.env
GATEWAY_KEYS = tuple(s.name for s in SETTINGS if s.sweep)
# the documented defaults, used to describe a step's effective gateway settings (run.json)
GATEWAY_DEFAULTS = {s.name: s.env_default for s in SETTINGS if s.sweep}

# what a value of a choice setting is called in a problem ("unknown publisher 'x'")
_CHOICE_NOUNS = {"PUBLISHER": "publisher", "GUNICORN_WORKER_CLASS": "worker class"}


def validate_gateway(problems: list[str], key: str, value: Any) -> dict[str, str] | None:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{key}: must be a mapping of gateway settings, got {value!r}")
        return None
    out: dict[str, str] = {}
    ok = True
    for name, v in value.items():
        k = f"{key}.{name}"
        if name not in GATEWAY_KEYS:
            problems.append(f"{k}: unknown gateway setting (known: {', '.join(GATEWAY_KEYS)})")
            ok = False
            continue
        text = _check(problems, k, BY_NAME[name], v)
        if text is None:
            ok = False
        else:
            out[name] = text
    return out if ok else None


def _check(problems: list[str], k: str, setting: Setting, v: Any) -> str | None:
    """The value as the env file gets it, or None after appending a problem."""
    if setting.type == "choice":
        if v not in setting.choices:
            noun = _CHOICE_NOUNS.get(setting.name, "value")
            problems.append(f"{k}: unknown {noun} {v!r} (known: {', '.join(setting.choices)})")
            return None
        return v
    if setting.type == "flag":
        if isinstance(v, bool):
            return "1" if v else "0"
        if v in (0, 1, "0", "1"):
            return str(v)
        problems.append(f"{k}: must be 0/1 or true/false, got {v!r}")
        return None
    if setting.type in ("seconds", "int"):
        if setting.range is None:
            raise AssertionError(f"{setting.name}: a sweep setting of type {setting.type} needs a range")
        lo, hi = setting.range
        if setting.type == "seconds":
            n = num_in(problems, k, _maybe_number(v), lo, hi)
            return None if n is None else _fmt_number(n)
        n = int_in(problems, k, _maybe_number(v), int(lo), int(hi))
        return None if n is None else str(n)
    # str, url: one line of text (it becomes a KEY=VALUE line)
    if not isinstance(v, str) or not v.strip() or "\n" in v:
        problems.append(f"{k}: must be a non-empty single-line string, got {v!r}")
        return None
    return v.strip()


def _maybe_number(v: Any) -> Any:
    """Gateway settings may be written as strings in YAML ("8"); accept numeric strings."""
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v
    return v


def _fmt_number(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else str(n)
