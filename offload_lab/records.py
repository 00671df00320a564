"""The files of a run folder, defined once (docs/result-format.md): run.json (RunRecord), the
step files (StepRecord) and a capacity suite's capacity.json (SuiteRecord). `fab` writes them
with write_run, write_step and write_suite, `analysis` reads them with read_run, read_step and
read_suite. from_dict takes the current shape of a file or one of the older shapes published
runs have (STEP_SHAPES, RUN_SHAPES), anything else is a RecordError naming what is wrong.
Sections whose shape belongs to their producer (k6's summary, the core's stats, ...) are kept as
the JSON objects they are. Standard library only: offload_lab and analysis both import it."""

from __future__ import annotations

import json
import os
import re
import types
from dataclasses import dataclass, field, fields, is_dataclass
from functools import cache
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

SCHEMA_VERSION = 1
RUN_FILE = "run.json"
STEPS_DIR = "steps"
CAPACITY_FILE = "capacity.json"  # a capacity search's result; in a suite's folder, its SuiteRecord
SUITE_KIND = "capacity-suite"  # SuiteRecord.kind: tells a suite's capacity.json from a search's
STEP_FILE_NAME = re.compile(
    r"^(?P<index>\d+)-(?P<mode>[A-Za-z0-9_]+)-(?P<rate>\d+(?:\.\d+)?)(?:-r(?P<repeat>\d+))?\.json$"
)
OMITTED_WHEN_NONE = {"omitted_when_none": True}  # field metadata: the key is left out when None


class RecordError(ValueError):
    """A file that is not a record of its kind; the message says why."""


def step_file_name(index: int, mode: str, rate: float, repeat: int = 1, repeats: int = 1) -> str:
    """`01-async-400.json`; `01-async-400-r2.json` when the spec repeats every point."""
    return f"{index:02d}-{mode}-{rate}" + (f"-r{repeat}" if repeats > 1 else "") + ".json"


@dataclass(frozen=True)
class StepFileName:
    """What a step file's name says: where a step that cannot be read belongs."""

    index: int
    mode: str
    rate: float
    repeat: int


def parse_step_file_name(name: str) -> StepFileName | None:
    match = STEP_FILE_NAME.match(name)
    if not match:
        return None
    repeat = int(match["repeat"]) if match["repeat"] else 1
    return StepFileName(int(match["index"]), match["mode"], float(match["rate"]), repeat)


# --------------------------------------------------------------------------------------------
# the records


@dataclass(kw_only=True)
class StepParameters:
    """A step file's `step` section: what the step offered and ran with."""

    index: int  # 1-based order in the run
    mode: str  # sync | async | noop
    rate: float  # the offered rate (req/s): the only copy the reader uses
    duration_s: float
    pre_allocated_vus: int
    max_vus: int
    work_ms: int
    label: str  # its series; the mode when the spec names none
    gateway: dict[str, str]  # effective: documented defaults < gateway.env < the step's
    request_timeout_s: float | None = None
    repeat: int = 1  # which repeat of its point, 1-based
    repeats: int = 1  # how many times the spec repeats every point
    faults: list[dict[str, Any]] = field(default_factory=list)  # as planned (the spec's)
    core: dict[str, str] = field(default_factory=dict)  # effective, of the first core host
    instruments: dict[str, Any] | None = None  # effective; None: all on, the ledger on the broker
    gateway_overrides: dict[str, str] = field(default_factory=dict)  # what the step switched
    core_overrides: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("rate", "duration_s"):
            if not getattr(self, name) > 0:
                raise RecordError(f"step.{name} must be above 0, got {getattr(self, name)!r}")


@dataclass(kw_only=True)
class StepRecord:
    """One step file: steps/<file_name>."""

    schema_version: int = SCHEMA_VERSION
    step: StepParameters
    limit: dict[str, Any] | None = None  # which stage limits it (offload_lab/limits.py)
    started_at: str
    load_ended_at: str
    ended_at: str
    clock: dict[str, Any] | None = None  # t0 and the load's start and end, unix seconds
    k6: dict[str, Any]  # k6's summary (merged over the load generators)
    core: dict[str, Any] | None  # the core's GET /stats after the drain
    broker: dict[str, Any] | None  # the task queue's samples, peaks and drain, the broker's facts
    hosts: dict[str, Any]  # CPU use over the step, per host
    hosts_timeline: dict[str, Any] | None = None  # CPU use (and wait) per host, second by second
    samples: dict[str, Any] | None = None  # {"file": per-request samples, "rows": n}
    ledger: dict[str, Any] | None = None  # async: outcome records by task id
    faults: list[dict[str, Any]] = field(default_factory=list)  # as performed, with their effects
    waited_for_empty_queue_s: float | None = None
    outcome_records_left_before: int | None = None

    @property
    def file_name(self) -> str:
        s = self.step
        return step_file_name(s.index, s.mode, s.rate, s.repeat, s.repeats)

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> StepRecord:
        return _from_dict(cls, data, STEP_SHAPES)


@dataclass(kw_only=True)
class RunRecord:
    """run.json: a run's provenance, settings and state; a sweep's and a capacity search's alike."""

    schema_version: int = SCHEMA_VERSION
    run_id: str = ""  # set by the run folder (offload_lab.results.RunFolder)
    spec_name: str = ""
    spec: dict[str, Any] = field(default_factory=dict)  # the spec as run, after defaults
    overrides: dict[str, Any] | None = field(default=None, metadata=OMITTED_WHEN_NONE)  # sweeps
    capacity_search: dict[str, Any] | None = field(default=None, metadata=OMITTED_WHEN_NONE)
    git_commit: str | None = None
    git_dirty: bool | None = None
    git_diff_file: str | None = field(default=None, metadata=OMITTED_WHEN_NONE)  # dirty only
    versions: dict[str, Any] = field(default_factory=dict)
    inventory: str | None = None
    hosts: dict[str, Any] = field(default_factory=dict)  # group -> hosts with their CPUs
    settings: dict[str, Any] = field(default_factory=dict)  # provisioned: gateway, core, broker
    planned_steps: list[str] | None = field(default=None, metadata=OMITTED_WHEN_NONE)  # sweeps
    started_at: str | None = None
    ended_at: str | None = None  # None while running
    status: str | None = None  # running | complete | interrupted | failed
    steps: list[str] = field(default_factory=list)  # the step files written, in order
    calibration: dict[str, Any] | None = field(default=None, metadata=OMITTED_WHEN_NONE)
    timing: dict[str, Any] | None = field(default=None, metadata=OMITTED_WHEN_NONE)  # once ended
    error: str | None = field(default=None, metadata=OMITTED_WHEN_NONE)
    restore_error: str | None = field(default=None, metadata=OMITTED_WHEN_NONE)
    interrupted_step: dict[str, Any] | None = field(default=None, metadata=OMITTED_WHEN_NONE)
    capacity: dict[str, Any] | None = field(default=None, metadata=OMITTED_WHEN_NONE)  # searches
    fixture: bool | None = field(default=None, metadata=OMITTED_WHEN_NONE)  # a synthesized run
    fixture_notes: str | None = field(default=None, metadata=OMITTED_WHEN_NONE)

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        return _from_dict(cls, data, RUN_SHAPES)


@dataclass(kw_only=True)
class SuiteRecord:
    """A capacity suite's capacity.json: the suite as run and the table of its subjects
    (analysis.capacity_table builds the rows from the subjects' folders)."""

    kind: str = SUITE_KIND
    schema_version: int = SCHEMA_VERSION
    suite: dict[str, Any]  # offload_lab.capacity_suite.Suite.as_dict
    run_id: str
    started_at: str
    reruns: list[dict[str, Any]] = field(default_factory=list)  # each --only: when, which subjects
    rejudged_at: str | None = field(default=None, metadata=OMITTED_WHEN_NONE)
    ended_at: str | None = None  # None while running
    status: str  # running | complete | partial | interrupted | failed
    noop_capacity_rps: float | None = None
    subjects: list[dict[str, Any]] = field(default_factory=list)  # one row per subject

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> SuiteRecord:
        """RecordError also for a single search's capacity.json (no `kind`)."""
        if isinstance(data, dict) and not is_suite_table(data):
            raise RecordError(f"kind {data.get('kind')!r}: not a capacity suite's table")
        return _from_dict(cls, data, SUITE_SHAPES)


def is_suite_table(data: Any) -> bool:
    """Whether a parsed capacity.json is a suite's (else a single search's result)."""
    return isinstance(data, dict) and data.get("kind") == SUITE_KIND


# --------------------------------------------------------------------------------------------
# the shapes each file has had


@dataclass(frozen=True)
class Shape:
    """A shape of a record's file: the schema versions written so, and the keys its files lack
    (a nested one as `step.x`), each read as its field's default."""

    name: str
    schema_versions: tuple[int, ...]
    lacks: frozenset[str]
    found_in: str


CURRENT = "current"
STEP_SHAPES = (
    Shape(CURRENT, (1,), frozenset(), "every step file written today"),
    Shape(
        "before instruments",
        (1,),
        frozenset({"step.instruments"}),
        "docs/results/{backlog,brokers,capacity,capacity-saturation,cluster,open}",
    ),
    Shape(
        "before the leftover count",
        (1,),
        frozenset({"step.instruments", "outcome_records_left_before"}),
        "docs/results/publishers",
    ),
    Shape(
        "first",
        (1,),
        frozenset(
            {"clock", "samples", "hosts_timeline", "ledger", "faults", "limit"}
            | {"waited_for_empty_queue_s", "outcome_records_left_before"}
            | {"step.request_timeout_s", "step.repeat", "step.repeats", "step.faults", "step.core"}
            | {"step.instruments", "step.gateway_overrides", "step.core_overrides"}
        ),
        "tests/analysis/fixtures (tests/analysis/make_fixtures.py)",
    ),
)
RUN_SHAPES = (
    Shape(CURRENT, (1,), frozenset(), "every run.json written today"),
    Shape("first", (1,), frozenset({"inventory"}), "tests/analysis/fixtures"),
)
SUITE_SHAPES = (Shape(CURRENT, (1,), frozenset(), "every suite's capacity.json"),)


# --------------------------------------------------------------------------------------------
# dict <-> record


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _to_dict(record: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if value is None and f.metadata.get("omitted_when_none"):
            continue
        out[f.name] = _to_dict(value) if is_dataclass(value) else value
    return out


def _always_written(cls: type, prefix: str = "") -> set[str]:
    """The keys every file of the current shape has (a nested record's as `name.key`)."""
    hints = _hints(cls)
    keys = set()
    for f in fields(cls):
        if f.metadata.get("omitted_when_none"):
            continue
        keys.add(prefix + f.name)
        if is_dataclass(hints[f.name]):
            keys |= _always_written(hints[f.name], f"{prefix}{f.name}.")
    return keys


def _present(cls: type, data: dict[str, Any], prefix: str = "") -> set[str]:
    hints = _hints(cls)
    keys = {prefix + k for k in data}
    for f in fields(cls):
        if is_dataclass(hints[f.name]) and f.name in data:
            if not isinstance(data[f.name], dict):
                raise RecordError(f"{prefix}{f.name}: not a JSON object")
            keys |= _present(hints[f.name], data[f.name], f"{prefix}{f.name}.")
    return keys


def shape_of(cls: type, data: dict[str, Any], shapes: tuple[Shape, ...]) -> Shape:
    """The shape a file's keys match exactly; RecordError naming the keys when none does."""
    present = _present(cls, data)
    lacking = _always_written(cls) - present
    for shape in shapes:
        if lacking == shape.lacks:
            version = data.get("schema_version")
            if version not in shape.schema_versions:
                known = ", ".join(map(str, shape.schema_versions))
                raise RecordError(f"schema_version {version!r}: this reader knows {known}")
            return shape
    closest = max((s for s in shapes if s.lacks <= lacking), key=lambda s: len(s.lacks))
    raise RecordError(
        f"lacks {', '.join(sorted(lacking - closest.lacks))}, which its closest known shape "
        f"({closest.name!r}, offload_lab/records.py) has"
    )


def _from_dict(cls: type, data: Any, shapes: tuple[Shape, ...]) -> Any:
    if not isinstance(data, dict):
        raise RecordError(f"not a JSON object (a {type(data).__name__})")
    shape_of(cls, data, shapes)
    return _build(cls, data, "")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = _hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(prefix + k for k in data if k not in names)
    if unknown:
        raise RecordError(f"unknown key(s) {', '.join(unknown)}")
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if is_dataclass(hint):
            value = _build(hint, value, f"{prefix}{name}.")
        elif not _conforms(value, hint):
            raise RecordError(f"{prefix}{name}: {value!r} is not {_type_text(hint)}")
        values[name] = value
    return cls(**values)


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a JSON value has the type of a field (its containers' items are not looked into)."""
    if hint is Any:
        return True
    if isinstance(hint, types.UnionType):
        return any(_conforms(value, h) for h in get_args(hint))
    if hint is type(None):
        return value is None
    if isinstance(value, bool):
        return hint is bool
    if hint is float:
        return isinstance(value, int | float)
    return isinstance(value, get_origin(hint) or hint)


def _type_text(hint: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number"}
    names |= {bool: "true or false", type(None): "null"}
    parts = get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return " or ".join(names.get(get_origin(p) or p, str(p)) for p in parts)


# --------------------------------------------------------------------------------------------
# the files


def write_json(path: Path, data: Any) -> None:
    """Write to a temporary file first and rename it into place, so that an interrupted run
    never leaves a half-written JSON file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """A JSON file; RecordError saying what is wrong with it (unreadable, empty, corrupt)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RecordError("not UTF-8 text") from None
    except OSError as exc:
        raise RecordError(f"cannot be read ({exc.strerror or exc})") from None
    if not text.strip():
        raise RecordError("empty file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(
            f"not valid JSON, truncated or corrupt ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno}, file is {len(text)} characters)"
        ) from None


def write_step(run_folder: Path, record: StepRecord) -> Path:
    path = Path(run_folder) / STEPS_DIR / record.file_name
    write_json(path, record.to_dict())
    return path


def read_step(path: Path) -> StepRecord:
    return StepRecord.from_dict(read_json(Path(path)))


def write_run(run_folder: Path, record: RunRecord) -> None:
    write_json(Path(run_folder) / RUN_FILE, record.to_dict())


def read_run(run_folder: Path) -> RunRecord:
    return RunRecord.from_dict(read_json(Path(run_folder) / RUN_FILE))


def write_suite(suite_folder: Path, record: SuiteRecord) -> None:
    write_json(Path(suite_folder) / CAPACITY_FILE, record.to_dict())


def read_suite(suite_folder: Path) -> SuiteRecord:
    return SuiteRecord.from_dict(read_json(Path(suite_folder) / CAPACITY_FILE))
