"""Sweep specs: loading, defaults, validation and merging overrides (the steps a spec plans are
in offload_lab.plan.steps).

The schema is documented in k6/sweeps/README.md. Every problem is reported with the key (or the
command-line option) that carries it; all problems are collected before anything is raised.
"""

from __future__ import annotations

import copy
import re
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

MODES = ("sync", "async")
ORDERS = ("interleaved", "by_mode", "by_series")

MAX_RATE = 5000
MAX_RATES = 100
MAX_DURATION_S = 3600
MAX_VUS_LIMIT = 10000
MAX_WORK_MS = 60000
MAX_REPEAT = 20
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

TOP_KEYS = (
    "name",
    "description",
    "rates",
    "duration_s",
    "pre_allocated_vus",
    "max_vus",
    "modes",
    "work_ms",
    "order",
    "cooldown_s",
    "drain_timeout_s",
    "request_timeout_s",
    "gateway",
    "core",
    "instruments",
    "series",
    "repeat",
)
REQUIRED_KEYS = ("name", "rates", "duration_s", "max_vus")
SERIES_KEYS = ("label", "modes", "gateway", "core", "faults", "instruments")
DEFAULTS: dict[str, Any] = {
    "description": "",
    "modes": ["sync", "async"],
    "work_ms": 1000,
    "order": "interleaved",
    "cooldown_s": 5,
    "drain_timeout_s": 120,
    "request_timeout_s": 10,
    "gateway": {},
    "core": {},
    "instruments": {},
    "repeat": 1,
}


class SpecError(ValueError):
    """One or more problems in a spec or its overrides; `problems` lists them one by one."""

    def __init__(self, problems: list[str], source: str = "spec"):
        self.problems = list(problems)
        self.source = source
        super().__init__(f"{source}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class SeriesSpec:
    """One series of a spec: its steps share a label, gateway settings (e.g. a publisher) and
    the faults performed during each of its steps."""

    label: str | None  # None: the plain spec, whose steps are labelled by their mode
    modes: list[str]
    gateway: dict[str, str] = field(default_factory=dict)
    faults: tuple[FaultSpec, ...] = ()
    core: dict[str, str] = field(default_factory=dict)  # core settings (core.sweep.env)
    instruments: dict[str, Any] = field(default_factory=dict)  # over the sweep's (instruments.py)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec (k6/sweeps/README.md), defaults filled in."""

    name: str
    rates: list[int]
    duration_s: int
    max_vus: int
    pre_allocated_vus: int
    description: str = ""
    modes: list[str] = field(default_factory=lambda: list(MODES))
    work_ms: int = 1000
    order: str = "interleaved"
    cooldown_s: float = 5
    drain_timeout_s: float = 120
    request_timeout_s: float = 10
    gateway: dict[str, str] = field(default_factory=dict)
    core: dict[str, str] = field(default_factory=dict)
    instruments: dict[str, Any] = field(default_factory=dict)  # set keys only (instruments.py)
    series: list[SeriesSpec] | None = None
    repeat: int = 1

    def as_dict(self) -> dict[str, Any]:
        """The spec as recorded in run.json."""
        out = asdict(self)
        if out["series"] is None:
            del out["series"]
        return out


def _rates(problems: list[str], key: str, value: Any) -> list[int] | None:
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"from", "to", "step"})
        if unknown:
            problems.append(f"{key}: unknown key(s) {', '.join(map(str, unknown))} (use from, to, step)")
            return None
        missing = [k for k in ("from", "to", "step") if k not in value]
        if missing:
            problems.append(f"{key}: missing {', '.join(missing)} (a range needs from, to, step)")
            return None
        lo = int_in(problems, f"{key}.from", value["from"], 1, MAX_RATE)
        hi = int_in(problems, f"{key}.to", value["to"], 1, MAX_RATE)
        step = int_in(problems, f"{key}.step", value["step"], 1, MAX_RATE)
        if None in (lo, hi, step):
            return None
        if hi < lo:
            problems.append(f"{key}: to ({hi}) must not be below from ({lo})")
            return None
        rates = list(range(lo, hi + 1, step))
    elif isinstance(value, list):
        if not value:
            problems.append(f"{key}: must not be empty")
            return None
        rates = []
        for i, r in enumerate(value):
            checked = int_in(problems, f"{key}[{i}]", r, 1, MAX_RATE)
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


def _modes(problems: list[str], key: str, value: Any) -> list[str] | None:
    if not isinstance(value, list) or not value:
        problems.append(f"{key}: must be a non-empty list of {', '.join(MODES)}, got {value!r}")
        return None
    bad = [m for m in value if m not in MODES]
    if bad:
        problems.append(f"{key}: unknown mode(s) {bad} (known: {', '.join(MODES)})")
        return None
    if len(set(value)) != len(value):
        problems.append(f"{key}: contains duplicates {value}")
        return None
    return list(value)


# --------------------------------------------------------------------------------------------


def validate(raw: Any, source: str = "spec", origin: dict[str, str] | None = None) -> SweepSpec:
    """Check a raw spec mapping and return it normalized, with defaults filled in.

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
        if key not in TOP_KEYS:
            problems.append(f"{key}: unknown key (known: {', '.join(TOP_KEYS)})")
    for key in REQUIRED_KEYS:
        if key not in raw or raw[key] is None:
            problems.append(f"{key}: required")

    spec: dict[str, Any] = {}
    name = raw.get("name")
    if name is not None:
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append(f"name: must be 1-64 characters of letters, digits, _ . - ; got {name!r}")
        else:
            spec["name"] = name
    desc = raw.get("description", DEFAULTS["description"])
    if not isinstance(desc, str):
        problems.append(f"description: must be a string, got {desc!r}")
    spec["description"] = desc if isinstance(desc, str) else ""

    if raw.get("rates") is not None:
        spec["rates"] = _rates(problems, named("rates"), raw["rates"])
    if raw.get("duration_s") is not None:
        spec["duration_s"] = int_in(problems, named("duration_s"), raw["duration_s"], 1, MAX_DURATION_S)
    if raw.get("max_vus") is not None:
        spec["max_vus"] = int_in(problems, named("max_vus"), raw["max_vus"], 1, MAX_VUS_LIMIT)
    pre = raw.get("pre_allocated_vus")
    if pre is None:
        spec["pre_allocated_vus"] = spec.get("max_vus")
    else:
        spec["pre_allocated_vus"] = int_in(problems, named("pre_allocated_vus"), pre, 1, MAX_VUS_LIMIT)
    if (
        spec.get("max_vus") is not None
        and spec.get("pre_allocated_vus") is not None
        and spec["max_vus"] < spec["pre_allocated_vus"]
    ):
        problems.append(
            f"{named('max_vus')}: must be >= pre_allocated_vus ({spec['pre_allocated_vus']}), "
            f"got {spec['max_vus']}"
        )

    spec["modes"] = _modes(problems, named("modes"), raw.get("modes", DEFAULTS["modes"]))
    spec["work_ms"] = int_in(
        problems, named("work_ms"), raw.get("work_ms", DEFAULTS["work_ms"]), 0, MAX_WORK_MS
    )
    order = raw.get("order", DEFAULTS["order"])
    if order not in ORDERS:
        problems.append(f"{named('order')}: must be one of {', '.join(ORDERS)}, got {order!r}")
    spec["order"] = order
    spec["cooldown_s"] = num_in(
        problems, named("cooldown_s"), raw.get("cooldown_s", DEFAULTS["cooldown_s"]), 0, 600
    )
    spec["drain_timeout_s"] = num_in(
        problems, named("drain_timeout_s"), raw.get("drain_timeout_s", DEFAULTS["drain_timeout_s"]), 0, 3600
    )
    timeout = num_in(
        problems,
        named("request_timeout_s"),
        raw.get("request_timeout_s", DEFAULTS["request_timeout_s"]),
        0.1,
        600,
    )
    spec["request_timeout_s"] = timeout
    if timeout is not None and spec["work_ms"] is not None and timeout * 1000 <= spec["work_ms"]:
        problems.append(
            f"request_timeout_s: must exceed the work time ({spec['work_ms']} ms), got {timeout} s"
        )
    spec["gateway"] = validate_gateway(problems, named("gateway"), raw.get("gateway", DEFAULTS["gateway"]))
    spec["core"] = validate_core(problems, named("core"), raw.get("core", DEFAULTS["core"]))
    spec["instruments"] = validate_instruments(
        problems, named("instruments"), raw.get("instruments", DEFAULTS["instruments"])
    )
    spec["repeat"] = int_in(problems, named("repeat"), raw.get("repeat", DEFAULTS["repeat"]), 1, MAX_REPEAT)

    series = raw.get("series")
    if series is not None:
        spec["series"] = _series(problems, series, spec.get("modes"), origin, spec.get("duration_s"))

    if problems:
        raise SpecError(problems, source)
    return SweepSpec(**spec)


def _series(
    problems: list[str],
    value: Any,
    default_modes: list[str] | None,
    origin: dict[str, str],
    duration_s: int | None,
):
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
        label = item.get("label")
        if not isinstance(label, str) or not NAME_RE.match(label):
            problems.append(f"{key}.label: required, 1-64 letters, digits, _ . - ; got {label!r}")
        elif label in labels:
            problems.append(f"{key}.label: duplicate label {label!r}")
        else:
            labels.add(label)
        if "modes" in origin:  # --modes on the command line applies to every series
            modes = default_modes
        elif "modes" in item:
            modes = _modes(problems, f"{key}.modes", item["modes"])
        else:
            modes = default_modes
        gateway = validate_gateway(problems, f"{key}.gateway", item.get("gateway", {}))
        core = validate_core(problems, f"{key}.core", item.get("core", {}))
        faults = validate_faults(problems, f"{key}.faults", item.get("faults", []), duration_s)
        instruments = validate_instruments(problems, f"{key}.instruments", item.get("instruments", {}))
        out.append(
            SeriesSpec(
                label=label, modes=modes, gateway=gateway, faults=faults, core=core, instruments=instruments
            )
        )
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
