"""The records: run.json (RunRecord), a step file (StepRecord, its `step` section StepParameters)
and a capacity suite's capacity.json (SuiteRecord), each field a key of its file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .convert import OMITTED_WHEN_NONE, RecordError, from_dict, to_dict
from .names import SCHEMA_VERSION, SUITE_KIND, step_file_name
from .shapes import RUN_SHAPES, STEP_SHAPES, SUITE_SHAPES


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
    limit: dict[str, Any] | None = None  # which stage limits it (offload_lab/plan/limits.py)
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
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> StepRecord:
        return from_dict(cls, data, STEP_SHAPES)


@dataclass(kw_only=True)
class RunRecord:
    """run.json: a run's provenance, settings and state; a sweep's and a capacity search's alike."""

    schema_version: int = SCHEMA_VERSION
    run_id: str = ""  # set by the run folder (offload_lab.run.results.RunFolder)
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
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        return from_dict(cls, data, RUN_SHAPES)


@dataclass(kw_only=True)
class SuiteRecord:
    """A capacity suite's capacity.json: the suite as run and the table of its subjects
    (offload_lab.analysis.capacity_table builds the rows from the subjects' folders)."""

    kind: str = SUITE_KIND
    schema_version: int = SCHEMA_VERSION
    suite: dict[str, Any]  # offload_lab.capacity.suite.Suite.as_dict
    run_id: str
    started_at: str
    reruns: list[dict[str, Any]] = field(default_factory=list)  # each --only: when, which subjects
    rejudged_at: str | None = field(default=None, metadata=OMITTED_WHEN_NONE)
    ended_at: str | None = None  # None while running
    status: str  # running | complete | partial | interrupted | failed
    noop_capacity_rps: float | None = None
    subjects: list[dict[str, Any]] = field(default_factory=list)  # one row per subject

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> SuiteRecord:
        """RecordError also for a single search's capacity.json (no `kind`)."""
        if isinstance(data, dict) and not is_suite_table(data):
            raise RecordError(f"kind {data.get('kind')!r}: not a capacity suite's table")
        return from_dict(cls, data, SUITE_SHAPES)


def is_suite_table(data: Any) -> bool:
    """Whether a parsed capacity.json is a suite's (else a single search's result)."""
    return isinstance(data, dict) and data.get("kind") == SUITE_KIND
