"""Sweep specs: loading, defaults, validation and merging overrides (the steps a spec plans are
in offload_lab.plan.steps).

The keys, their defaults and bounds are offload_lab/plan/spec_fields.py's table (documented in
k6/sweeps/README.md, generated from it). Every problem is reported with the key (or the
command-line option) that carries it; all problems are collected before anything is raised.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..paths import SWEEPS_DIR
from .checks import int_in, is_int, num_in
from .core_spec import validate_core
from .fault_spec import FaultSpec, validate_faults
from .gateway_spec import validate_gateway
from .instruments import validate_instruments
from .spec_fields import (
    MAX_RATES,
    NAME_RE,
    REQUIRED,
    SERIES_FIELDS,
    SERIES_KEYS,
    SWEEP_FIELDS,
    SWEEP_KEYS,
    SameAs,
    SpecField,
)


class SpecError(ValueError):
    """One or more problems in a spec or its overrides; `problems` lists them one by one."""

    def __init__(self, problems: list[str], source: str = "spec"):
        self.problems = list(problems)
        self.source = source
        super().__init__(f"{source}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class SeriesSpec:
    """One series of a spec: its steps share a label, gateway settings (e.g. a publisher) and
    the faults performed during each of its steps. Its keys: spec_fields.SERIES_KEYS."""

    label: str | None  # None: the plain spec, whose steps are labelled by their mode
    modes: list[str]
    gateway: dict[str, str] = field(default_factory=dict)
    faults: tuple[FaultSpec, ...] = ()
    core: dict[str, str] = field(default_factory=dict)  # core settings (core.sweep.env)
    instruments: dict[str, Any] = field(default_factory=dict)  # over the sweep's (instruments.py)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec, defaults filled in: one attribute per key of
    spec_fields.SWEEP_KEYS (k6/sweeps/README.md), whose defaults are the table's."""

    name: str
    rates: list[int]
    duration_s: int
    max_vus: int
    pre_allocated_vus: int
    description: str
    modes: list[str]
    work_ms: int
    order: str
    cooldown_s: float
    drain_timeout_s: float
    request_timeout_s: float
    gateway: dict[str, str]
    core: dict[str, str]
    instruments: dict[str, Any]  # set keys only (instruments.py)
    series: list[SeriesSpec] | None
    repeat: int

    def as_dict(self) -> dict[str, Any]:
        """The spec as recorded in run.json."""
        out = asdict(self)
        if out["series"] is None:
            del out["series"]
        return out


def _name(problems: list[str], key: str, value: Any, spec_field: SpecField) -> str | None:
    if not isinstance(value, str) or not NAME_RE.match(value):
        problems.append(f"{key}: must be 1-64 characters of letters, digits, _ . - ; got {value!r}")
        return None
    return value


def _text(problems: list[str], key: str, value: Any, spec_field: SpecField) -> str | None:
    if not isinstance(value, str):
        problems.append(f"{key}: must be a string, got {value!r}")
        return None
    return value


def _choice(problems: list[str], key: str, value: Any, spec_field: SpecField) -> str | None:
    if value not in spec_field.choices:
        problems.append(f"{key}: must be one of {', '.join(spec_field.choices)}, got {value!r}")
        return None
    return value


def _rates(problems: list[str], key: str, value: Any, spec_field: SpecField) -> list[int] | None:
    lo, hi = spec_field.range
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"from", "to", "step"})
        if unknown:
            problems.append(f"{key}: unknown key(s) {', '.join(map(str, unknown))} (use from, to, step)")
            return None
        missing = [k for k in ("from", "to", "step") if k not in value]
        if missing:
            problems.append(f"{key}: missing {', '.join(missing)} (a range needs from, to, step)")
            return None
        first = int_in(problems, f"{key}.from", value["from"], lo, hi)
        last = int_in(problems, f"{key}.to", value["to"], lo, hi)
        step = int_in(problems, f"{key}.step", value["step"], 1, hi)
        if None in (first, last, step):
            return None
        if last < first:
            problems.append(f"{key}: to ({last}) must not be below from ({first})")
            return None
        rates = list(range(first, last + 1, step))
    elif isinstance(value, list):
        if not value:
            problems.append(f"{key}: must not be empty")
            return None
        rates = []
        for i, r in enumerate(value):
            checked = int_in(problems, f"{key}[{i}]", r, lo, hi)
            if checked is None:
                return None
            rates.append(checked)
        if len(set(rates)) != len(rates):
            problems.append(f"{key}: contains duplicates {rates}")
            return None
    else:
        problems.append(f"{key}: must be a list of integers or a mapping from/to/step, got {value!r}")
        return None
    if len(rates) > MAX_RATES:
        problems.append(f"{key}: at most {MAX_RATES} rates, got {len(rates)}")
        return None
    return rates


def _modes(problems: list[str], key: str, value: Any, spec_field: SpecField) -> list[str] | None:
    known = ", ".join(spec_field.choices)
    if not isinstance(value, list) or not value:
        problems.append(f"{key}: must be a non-empty list of {known}, got {value!r}")
        return None
    bad = [m for m in value if m not in spec_field.choices]
    if bad:
        problems.append(f"{key}: unknown mode(s) {bad} (known: {known})")
        return None
    if len(set(value)) != len(value):
        problems.append(f"{key}: contains duplicates {value}")
        return None
    return list(value)


# type (spec_fields.TYPES) -> its check: the value, or None after appending a problem named `key`;
# a series and its faults are checked with what they depend on (_series)
CHECKS: dict[str, Callable[[list[str], str, Any, SpecField], Any]] = {
    "name": _name,
    "text": _text,
    "rates": _rates,
    "int": lambda problems, key, value, f: int_in(problems, key, value, *f.range),
    "number": lambda problems, key, value, f: num_in(problems, key, value, *f.range),
    "choice": _choice,
    "modes": _modes,
    "gateway": lambda problems, key, value, f: validate_gateway(problems, key, value),
    "core": lambda problems, key, value, f: validate_core(problems, key, value),
    "instruments": lambda problems, key, value, f: validate_instruments(problems, key, value),
}


def _checked(problems: list[str], key: str, spec_field: SpecField, value: Any, checked: dict[str, Any]):
    """A key's value checked, or its default when unset (None); `checked`: the keys before it."""
    if value is not None:
        return CHECKS[spec_field.type](problems, key, value, spec_field)
    if spec_field.default is REQUIRED:
        problems.append(f"{key}: required")
        return None
    if isinstance(spec_field.default, SameAs):
        return checked.get(spec_field.default.key)
    return copy.deepcopy(spec_field.default)


# --------------------------------------------------------------------------------------------


def validate(raw: Any, source: str = "spec", origin: dict[str, str] | None = None) -> SweepSpec:
    """Check a raw spec mapping and return it normalized, with defaults filled in (a key set to
    null counts as unset).

    `origin` maps spec keys to the command-line option that set them, so that a problem with an
    overridden value names the option too ("duration_s (--duration): ...").
    """
    origin = origin or {}
    problems: list[str] = []

    def named(key: str) -> str:
        return f"{key} ({origin[key]})" if key in origin else key

    if not isinstance(raw, dict):
        raise SpecError([f"the spec must be a mapping of keys, got {type(raw).__name__}"], source)
    for key in raw:
        if key not in SWEEP_KEYS:
            problems.append(f"{key}: unknown key (known: {', '.join(SWEEP_KEYS)})")

    spec: dict[str, Any] = {}
    for spec_field in SWEEP_FIELDS:
        if spec_field.type != "series":  # checked last, with the keys it depends on
            value = raw.get(spec_field.key)
            spec[spec_field.key] = _checked(problems, named(spec_field.key), spec_field, value, spec)

    max_vus, pre_vus = spec["max_vus"], spec["pre_allocated_vus"]
    if max_vus is not None and pre_vus is not None and max_vus < pre_vus:
        problems.append(f"{named('max_vus')}: must be >= pre_allocated_vus ({pre_vus}), got {max_vus}")
    timeout, work_ms = spec["request_timeout_s"], spec["work_ms"]
    if timeout is not None and work_ms is not None and timeout * 1000 <= work_ms:
        problems.append(f"request_timeout_s: must exceed the work time ({work_ms} ms), got {timeout} s")

    series = raw.get("series")
    spec["series"] = None if series is None else _series(problems, series, spec, origin)

    if problems:
        raise SpecError(problems, source)
    return SweepSpec(**spec)


def _series(problems: list[str], value: Any, spec: dict[str, Any], origin: dict[str, str]):
    """The series of a spec whose other keys are checked (`spec`): a series' modes default to the
    spec's (and --modes replaces them all), its faults must start within the spec's steps."""
    if not isinstance(value, list) or not value:
        problems.append(f"series: must be a non-empty list of series mappings, got {value!r}")
        return None
    out = []
    labels = set()
    for i, item in enumerate(value):
        key = f"series[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{key}: must be a mapping with label, modes, gateway, got {item!r}")
            continue
        for k in item:
            if k not in SERIES_KEYS:
                problems.append(f"{key}.{k}: unknown key (known: {', '.join(SERIES_KEYS)})")
        series: dict[str, Any] = {}
        for spec_field in SERIES_FIELDS:
            k, v = spec_field.key, item.get(spec_field.key)
            if k == "modes" and (v is None or "modes" in origin):
                series[k] = spec["modes"]
            elif k == "faults":
                faults = [] if v is None else v
                series[k] = validate_faults(problems, f"{key}.{k}", faults, spec["duration_s"])
            else:
                series[k] = _checked(problems, f"{key}.{k}", spec_field, v, series)
        label = series["label"]
        if label is not None and label in labels:
            problems.append(f"{key}.label: duplicate label {label!r}")
        labels.add(label)
        out.append(SeriesSpec(**series))
    return out


# --------------------------------------------------------------------------------------------


def spec_path(name_or_path: str, sweeps_dir: Path = SWEEPS_DIR) -> Path:
    """A spec argument is a path to a YAML file or the name of one in k6/sweeps/."""
    p = Path(name_or_path)
    if p.suffix in (".yml", ".yaml") or "/" in name_or_path:
        if not p.is_file():
            raise SpecError([f"spec: no such file {name_or_path}"], "spec")
        return p
    for suffix in (".yml", ".yaml"):
        candidate = sweeps_dir / f"{name_or_path}{suffix}"
        if candidate.is_file():
            return candidate
    known = sorted(x.stem for x in sweeps_dir.glob("*.y*ml"))
    raise SpecError([f"spec: unknown spec {name_or_path!r} (in {sweeps_dir}: {', '.join(known)})"], "spec")


def load_raw(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError([f"not valid YAML: {exc}"], str(path)) from exc


def load(
    name_or_path: str, overrides: dict[str, Any] | None = None, option_names: dict[str, str] | None = None
) -> SweepSpec:
    """Load a spec by name or path, apply parsed overrides and validate."""
    path = spec_path(name_or_path)
    raw = load_raw(path)
    return apply_overrides(raw, overrides or {}, str(path), option_names)


def apply_overrides(
    raw: Any, overrides: dict[str, Any], source: str = "spec", option_names: dict[str, str] | None = None
) -> SweepSpec:
    """Merge parsed overrides (spec key -> value) into a raw spec and validate the result.

    `option_names` maps a spec key to the command-line option that set it, for the messages."""
    if not isinstance(raw, dict):
        return validate(raw, source)
    merged = copy.deepcopy(raw)
    origin = {}
    for key, value in overrides.items():
        origin[key] = (option_names or {}).get(key, "--" + key.replace("_", "-"))
        if key in ("gateway", "core", "instruments"):
            merged[key] = {**(merged.get(key) or {}), **value}
        else:
            merged[key] = value
    if "max_vus" in overrides and "pre_allocated_vus" not in overrides:
        pre = merged.get("pre_allocated_vus")
        if pre is not None and is_int(pre) and pre > overrides["max_vus"]:
            # lowering maxVUs below the spec's pre-allocation lowers the pre-allocation with it
            merged["pre_allocated_vus"] = overrides["max_vus"]
    return validate(merged, source, origin)
