"""A capacity suite (k6/capacity/*.yml): several `fab capacity` searches under one SLO, one per
subject (a path with its gateway and core settings), checked as a whole before any load.

    name: lab
    slo_p95_ms: 20          # shared by every subject: one SLO, comparable capacities
    max_error_pct: 0.1
    duration_s: 10          # defaults a subject may override: duration_s, start, max_rate,
    start: 100              #   boundary_repeats, work_ms
    max_rate: 4000
    gateway: {...}          # every subject's, merged under the subject's own
    core: {...}
    subjects:
      - {name: sync, mode: sync, start: 25}
      - {name: kombu_pool, mode: async, gateway: {PUBLISHER: kombu_pool, PUBLISH_CONFIRM: 1}}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..paths import REPO_ROOT
from ..plan.capacity_fields import BY_KEY, SUBJECT_KEYS, SUITE_KEYS
from ..plan.checks import int_in
from ..plan.core_spec import validate_core
from ..plan.gateway_spec import validate_gateway
from ..plan.spec import SpecError, load_raw, spec_path
from ..plan.spec_fields import NAME_RE
from .probe import Slo
from .search import NUMBERS, CapacityPlan, check_mode, check_number, make_plan

CAPACITY_DIR = REPO_ROOT / "k6" / "capacity"
# the keys of a suite and of its subjects (offload_lab/plan/capacity_fields.py) that are not a search's
STRUCTURE = ("name", "description", "mode", "subjects")
SHARED = tuple(k for k in SUITE_KEYS if k not in STRUCTURE)  # every subject's search settings
OVERRIDABLE = tuple(k for k in SUBJECT_KEYS if k not in STRUCTURE)  # the others: one SLO for the table
# suite key -> the `fab capacity` option whose bounds and default it shares (capacity.NUMBERS)
NUMBER_OPTIONS = {f.key: option for option, f in NUMBERS.items()}
SUITE_DEFAULTS = {key: NUMBERS[option].default for key, option in NUMBER_OPTIONS.items()}
RESERVED_NAMES = ("report",)  # folders of a suite run that are not subjects


@dataclass(frozen=True)
class Subject:
    name: str
    description: str
    plan: CapacityPlan

    def as_dict(self) -> dict[str, Any]:
        p = self.plan
        return {
            "name": self.name,
            "description": self.description,
            "mode": p.mode,
            "start": p.start,
            "max_rate": p.max_rate,
            "duration_s": p.spec.duration_s,
            "boundary_repeats": p.boundary_repeats,
            "work_ms": p.spec.work_ms,
            "gateway": dict(p.spec.gateway),
            "core": dict(p.spec.core),
        }


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    slo: Slo
    subjects: list[Subject]
    source: str

    def select(self, only: list[str] | None) -> list[Subject]:
        """The subjects named by --only (all when None), in the suite's order."""
        if not only:
            return list(self.subjects)
        known = [s.name for s in self.subjects]
        unknown = [n for n in only if n not in known]
        if unknown:
            raise SpecError(
                [f"--only: no subject {', '.join(map(repr, unknown))} (known: {', '.join(known)})"],
                self.source,
            )
        return [s for s in self.subjects if s.name in only]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "slo": {"p95_ms": self.slo.p95_ms, "max_error_pct": self.slo.max_error_pct, "dropped": 0},
            "source": self.source,
            "subjects": [s.as_dict() for s in self.subjects],
        }


def load(name_or_path: str) -> Suite:
    """A suite by name (k6/capacity/NAME.yml) or path, checked; raises SpecError naming every
    problem of every subject."""
    path = spec_path(name_or_path, CAPACITY_DIR)
    try:
        source = str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        source = str(path)
    return validate(load_raw(path), source)


def validate(raw: Any, source: str = "suite") -> Suite:
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise SpecError([f"a suite is a mapping with name and subjects, got {type(raw).__name__}"], source)
    problems += [f"{k}: unknown key (known: {', '.join(SUITE_KEYS)})" for k in raw if k not in SUITE_KEYS]
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.append(f"name: required, 1-64 characters of letters, digits, _ . - ; got {name!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        problems.append(f"description: must be a string, got {description!r}")
    shared = {**SUITE_DEFAULTS, **{k: v for k, v in raw.items() if k in SHARED}}
    p95 = check_number(problems, "slo_p95_ms", shared["slo_p95_ms"], "slo_p95_ms")
    errors = check_number(problems, "max_error_pct", shared["max_error_pct"], "max_error_pct")
    shared_settings = {
        "gateway": validate_gateway(problems, "gateway", raw.get("gateway")),
        "core": validate_core(problems, "core", raw.get("core")),
    }
    subjects_raw = raw.get("subjects")
    if not isinstance(subjects_raw, list) or not subjects_raw:
        problems.append("subjects: required, a non-empty list of {name, mode, ...}")
        subjects_raw = []
    slo = Slo(p95 if p95 is not None else Slo.p95_ms, errors if errors is not None else Slo.max_error_pct)
    subjects = []
    seen: set[str] = set()
    for i, item in enumerate(subjects_raw):
        subject = _subject(problems, f"subjects[{i}]", item, shared, shared_settings, slo, seen)
        if subject is not None:
            subjects.append(subject)
    if problems:
        raise SpecError(problems, source)
    return Suite(name, description or "", slo, subjects, source)


def _subject(problems, key, item, shared, shared_settings, slo, seen) -> Subject | None:
    if not isinstance(item, dict):
        problems.append(f"{key}: must be a mapping with name and mode, got {item!r}")
        return None
    before = len(problems)
    name = item.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name) or name in RESERVED_NAMES:
        problems.append(f"{key}.name: required, letters, digits, _ . - (not report); got {name!r}")
    elif name in seen:
        problems.append(f"{key}.name: {name!r} is already a subject: names must be unique")
    else:
        seen.add(name)
        key = f"{key} ({name})"
    known = ", ".join(SUBJECT_KEYS)
    problems += [f"{key}.{k}: unknown key (known: {known})" for k in item if k not in SUBJECT_KEYS]
    mode = check_mode(problems, item.get("mode"), f"{key}.mode")
    description = item.get("description", "")
    if not isinstance(description, str):
        problems.append(f"{key}.description: must be a string, got {description!r}")
    values = {**shared, **{k: v for k, v in item.items() if k in OVERRIDABLE}}
    where = {k: (f"{key}.{k}" if k in item else k) for k in values}
    start, max_rate, duration, repeats = (
        check_number(problems, NUMBER_OPTIONS[k], values[k], where[k])
        for k in ("start", "max_rate", "duration_s", "boundary_repeats")
    )
    if start is not None and max_rate is not None and max_rate < start:
        problems.append(f"{where['max_rate']}: must not be below start ({start}), got {max_rate}")
    work_ms = None
    if mode == "noop" and "work_ms" in item:
        problems.append(f"{key}.work_ms: a noop probe works nothing (work_ms 0): leave it out")
    elif "work_ms" in values:
        work_ms = int_in(problems, where["work_ms"], values["work_ms"], *BY_KEY["work_ms"].range)
    settings = {}
    for part, validate_part in (("gateway", validate_gateway), ("core", validate_core)):
        own = validate_part(problems, f"{key}.{part}", item.get(part))
        if own is not None and shared_settings[part] is not None:
            settings[part] = {**shared_settings[part], **own}
    if len(problems) > before:
        return None
    try:
        plan = make_plan(
            mode, slo, start, max_rate, duration, settings, work_ms, f"capacity-{name}", repeats, key
        )
    except SpecError as exc:  # what only the whole spec checks (e.g. the timeout above the work)
        problems += [f"{key}: {p}" for p in exc.problems]
        return None
    return Subject(name, description, plan)


def suite_file_text(suite: Suite) -> str | None:
    """The suite file as written, to keep beside the results (None when it is not a file)."""
    path = Path(suite.source) if Path(suite.source).is_absolute() else REPO_ROOT / suite.source
    return path.read_text(encoding="utf-8") if path.is_file() else None
