"""Read and check one run folder (docs/result-format.md): run.json and its step files, read
through offload_lab.records, the format's one definition (with the older shapes it accepts).

Bad or partial input never stops the whole report: a file that is no record (missing, empty,
corrupt, or of no known shape) becomes a warning that names it and what is wrong with it, its
step shows as missing where its file name places it, and the usable steps are kept. Only a
folder with nothing usable at all raises LoadError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records import (
    RUN_FILE,
    STEPS_DIR,
    RecordError,
    RunRecord,
    StepRecord,
    parse_step_file_name,
    read_run,
    read_step,
)
from .delay_queues import DelayQueue, find_delay_queues

# k6 metrics the derived figures need; dropped_iterations is left out on purpose: k6 omits it
# from the summary when it is 0.
REQUIRED_K6_METRICS = ("iterations", "http_reqs", "http_req_failed", "http_req_duration")
TREND_STATS = ("avg", "med", "p(95)", "p(99)", "max")
KNOWN_MODES = ("sync", "async", "noop")  # noop: `fab capacity --mode noop`, POST /noop


NO_CONFIRM_VALUES = ("0", "false", "no", "off")
NO_CONFIRM_SUFFIX = " (no confirms)"


class LoadError(Exception):
    """Nothing usable in the folder (it does not exist, is not a run folder, ...)."""


@dataclass
class LoadedStep:
    """A step as the report reads it: its record's figures (offload_lab.records.StepRecord) and
    what the report makes of them: its series label (which says a gateway did not wait for
    confirms, and the mode of a series run in both), its delay queues. (What a spec plans
    before the step runs is offload_lab.plan.steps.PlannedStep.)"""

    file: str  # path relative to the run folder, e.g. "steps/01-sync-50.json"
    index: int | None
    mode: str
    rate: float
    label: str
    duration_s: float
    pre_allocated_vus: int | None = None
    max_vus: int | None = None
    work_ms: float | None = None
    gateway: dict[str, Any] = field(default_factory=dict)
    k6: dict[str, Any] | None = None  # None: no usable summary
    core: dict[str, Any] | None = None
    broker: dict[str, Any] | None = None
    hosts: dict[str, Any] | None = None
    started_at: str | None = None
    load_ended_at: str | None = None
    ended_at: str | None = None
    repeat: int = 1  # 1-based repeat of its point (spec `repeat: N`)
    clock: dict[str, Any] | None = None  # t0 and load start/end, unix seconds
    samples_file: str | None = None  # per-request samples, relative to the run folder
    hosts_timeline: dict[str, Any] | None = None  # CPU % per host, second by second
    ledger: dict[str, Any] | None = None  # async: the ledger by task id (offload_lab/analysis/ledger.py)
    faults: list[dict[str, Any]] = field(default_factory=list)  # faults performed during the load
    limit: dict[str, Any] | None = (
        None  # which stage limited it (offload_lab/plan/limits.py); None: older runs
    )
    instruments: dict[str, Any] | None = (
        None  # the sweep's own (offload_lab/plan/instruments.py); None: older runs
    )
    core_settings: dict[str, Any] = field(default_factory=dict)  # step.core: the core's effective settings
    # the delay queues' depth as the step sampled it (offload_lab/analysis/delay_queues.py); {}: none
    delay_queues: dict[str, DelayQueue] = field(default_factory=dict)

    def k6_metric(self, name: str) -> dict[str, Any] | None:
        """The `values` dict of a k6 metric, or None if the summary lacks it."""
        if not self.k6:
            return None
        metric = (self.k6.get("metrics") or {}).get(name)
        if not isinstance(metric, dict):
            return None
        values = metric.get("values")
        return values if isinstance(values, dict) else None


@dataclass
class UnreadableStep:
    """A step of the run folder that could not be read (missing, empty, corrupt): shown as
    "missing" in the tables at the point its file name (and the other steps) place it."""

    file: str  # e.g. "steps/05-async-50-r1.json"
    mode: str | None  # from the file name; None when the name does not say
    rate: float | None
    repeat: int = 1
    label: str | None = None  # its series, when the readable steps tell which one it was


@dataclass
class Run:
    path: Path
    meta: RunRecord  # the run's run.json; only its run id when run.json could not be read
    steps: list[LoadedStep]
    warnings: list[str]
    listed: list[str] | None = None  # the step files run.json lists; None: it could not be read
    display_label: str | None = None  # set by comparisons
    unreadable: list[UnreadableStep] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.meta.run_id or self.path.name

    @property
    def label(self) -> str:
        """Name for the run in comparisons."""
        return self.display_label or self.run_id


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def loaded_step(record: StepRecord, file: str, warnings: list[str]) -> LoadedStep:
    """The report's view of a step record; what it lacks for the report is added to `warnings`."""
    params = record.step
    label = params.label
    if params.mode not in KNOWN_MODES:
        warnings.append(
            f"{file}: unknown mode {params.mode!r} (expected {', '.join(KNOWN_MODES)}); charted as given"
        )
    confirm = str(params.gateway.get("PUBLISH_CONFIRM", "1")).lower()
    if params.mode == "async" and confirm in NO_CONFIRM_VALUES:
        label += NO_CONFIRM_SUFFIX  # a 202 without the broker's confirm: every table says so
    k6 = record.k6 if isinstance(record.k6.get("metrics"), dict) else None
    if k6 is None:
        warnings.append(f"{file}: no k6 summary (k6.metrics); client latency, throughput and drops missing")
    step = LoadedStep(
        file=file,
        index=params.index,
        mode=params.mode,
        rate=float(params.rate),
        label=label,
        duration_s=float(params.duration_s),
        pre_allocated_vus=params.pre_allocated_vus,
        max_vus=params.max_vus,
        work_ms=params.work_ms,
        gateway=params.gateway,
        k6=k6,
        core=record.core,
        broker=record.broker,
        hosts=record.hosts,
        started_at=record.started_at,
        load_ended_at=record.load_ended_at,
        ended_at=record.ended_at,
        repeat=params.repeat,
        clock=record.clock,
        samples_file=(record.samples or {}).get("file"),
        hosts_timeline=record.hosts_timeline,
        ledger=record.ledger,
        instruments=params.instruments,
        faults=record.faults,
        limit=record.limit,
        core_settings=params.core,
        delay_queues=find_delay_queues(record.to_dict(), (record.broker or {}).get("queue")),
    )
    if k6 is not None:
        for metric in REQUIRED_K6_METRICS:
            if step.k6_metric(metric) is None:
                warnings.append(f"{file}: k6 metric '{metric}' missing from the summary")
        trend = step.k6_metric("http_req_duration")
        if trend is not None:
            absent = [s for s in TREND_STATS if _num(trend.get(s)) is None]
            if absent:
                warnings.append(
                    f"{file}: http_req_duration lacks {', '.join(absent)} "
                    "(summaryTrendStats should include p(99))"
                )
    if params.mode == "async":
        if step.core is None:
            warnings.append(f"{file}: async step without 'core' stats; completion latency and loss unknown")
        if step.broker is None:
            warnings.append(f"{file}: async step without 'broker' samples; backlog and drain time unknown")
    return step


def unreadable_step(rel: str) -> UnreadableStep:
    name = parse_step_file_name(Path(rel).name)
    if name is None:
        return UnreadableStep(file=rel, mode=None, rate=None)
    return UnreadableStep(file=rel, mode=name.mode, rate=name.rate, repeat=name.repeat)


def place_unreadable(unreadable: list[UnreadableStep], steps: list[LoadedStep]) -> None:
    """Name the series of each unreadable step, as far as the readable steps tell: the only
    series of its mode, or the only series of its mode lacking that rate and repeat."""
    for u in unreadable:
        if u.mode is None:
            continue
        labels = list(dict.fromkeys(s.label for s in steps if s.mode == u.mode))
        if not labels:
            u.label = u.mode  # a step's label defaults to its mode
            continue
        lacking = [
            label
            for label in labels
            if not any(s.label == label and s.rate == u.rate and s.repeat == u.repeat for s in steps)
        ]
        if len(labels) == 1 or len(lacking) == 1:
            u.label = labels[0] if len(labels) == 1 else lacking[0]


def split_mixed_series(steps: list[LoadedStep]) -> None:
    """A series run in both modes (e.g. `gevent` with sync and async steps) becomes one series
    per mode, "gevent sync" and "gevent async": a point is (series, mode, rate)."""
    modes: dict[str, set[str]] = {}
    for step in steps:
        modes.setdefault(step.label, set()).add(step.mode)
    for step in steps:
        if len(modes[step.label]) > 1 and step.label not in ("sync", "async"):
            step.label = f"{step.label} {step.mode}"


def load_run(run_dir: str | Path) -> Run:
    """Load a run folder. Raises LoadError only when there is nothing to work with."""
    path = Path(run_dir)
    if not path.exists():
        raise LoadError(f"run folder {path} does not exist")
    if not path.is_dir():
        raise LoadError(f"{path} is not a folder (expected a run folder with {RUN_FILE} and {STEPS_DIR}/)")
    if not (path / RUN_FILE).exists():
        hint = f" (it has a {STEPS_DIR}/ folder, but no {RUN_FILE})" if (path / STEPS_DIR).is_dir() else ""
        raise LoadError(f"{path} is not a run folder: {RUN_FILE} is missing{hint}")

    warnings: list[str] = []
    listed: list[str] | None = None
    try:
        meta = read_run(path)
        listed = meta.steps
        if meta.status not in (None, "complete"):
            warnings.append(
                f"{RUN_FILE}: run status is '{meta.status}': the run did not finish, steps may be missing"
            )
    except RecordError as exc:
        meta = RunRecord(run_id=path.name)
        warnings.append(f"{RUN_FILE}: {exc}")
        warnings.append(
            f"{RUN_FILE} unusable: steps are taken from {STEPS_DIR}/*.json and the header is incomplete"
        )

    steps_dir = path / STEPS_DIR
    present = sorted(p.name for p in steps_dir.glob("*.json")) if steps_dir.is_dir() else []
    if not steps_dir.is_dir():
        warnings.append(f"{STEPS_DIR}/: folder missing")

    order: list[str] = []
    unreadable: list[UnreadableStep] = []
    if listed is not None:
        for name in listed:
            if not isinstance(name, str):
                warnings.append(f"{RUN_FILE}: steps list holds a non-name entry {name!r}; ignored")
                continue
            name = Path(name).name
            if name not in present:
                warnings.append(f"{STEPS_DIR}/{name}: listed in {RUN_FILE} but missing; step not charted")
                unreadable.append(unreadable_step(f"{STEPS_DIR}/{name}"))
                continue
            if name not in order:
                order.append(name)
        for name in present:
            if name not in order:
                warnings.append(f"{STEPS_DIR}/{name}: present but not listed in {RUN_FILE}; included")
                order.append(name)
    else:
        order = present

    steps: list[LoadedStep] = []
    for name in order:
        rel = f"{STEPS_DIR}/{name}"
        try:
            steps.append(loaded_step(read_step(steps_dir / name), rel, warnings))
        except RecordError as exc:
            warnings.append(f"{rel}: {exc}; skipped")
            unreadable.append(unreadable_step(rel))
    split_mixed_series(steps)
    place_unreadable(unreadable, steps)

    seen: dict[tuple[str, float, int], list[str]] = {}
    for step in steps:
        seen.setdefault((step.label, step.rate, step.repeat), []).append(step.file)
    for (label, rate, _), files in seen.items():
        if len(files) > 1:
            warnings.append(
                f"{label} at {rate:g}/s appears in {len(files)} steps ({', '.join(files)}); each is charted"
            )
    return Run(path=path, meta=meta, steps=steps, warnings=warnings, listed=listed, unreadable=unreadable)
