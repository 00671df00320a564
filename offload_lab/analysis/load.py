"""Read and check one run folder (docs/result-format.md): run.json + steps/*.json.

Bad or partial input never stops the whole report: each problem becomes a warning that names
the file (and what is wrong with it), and the usable steps are kept. Only a folder with nothing
usable at all raises LoadError.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .delay_queues import DelayQueue, find_delay_queues

SCHEMA_VERSION = 1
STEP_NAME = re.compile(
    r"^(?P<index>\d+)-(?P<mode>[A-Za-z0-9_]+)-(?P<rate>\d+(?:\.\d+)?)(?:-r(?P<repeat>\d+))?\.json$"
)
# k6 metrics the derived figures need; dropped_iterations is left out on purpose: k6 omits it
# from the summary when it is 0.
REQUIRED_K6_METRICS = ("iterations", "http_reqs", "http_req_failed", "http_req_duration")
TREND_STATS = ("avg", "med", "p(95)", "p(99)", "max")


NO_CONFIRM_VALUES = ("0", "false", "no", "off")
NO_CONFIRM_SUFFIX = " (no confirms)"


class LoadError(Exception):
    """Nothing usable in the folder (it does not exist, is not a run folder, ...)."""


@dataclass
class StepRecord:
    """One step file of a run folder, parsed; sections that were missing or unusable are None.
    (What a spec plans before the step runs is offload_lab.plan.spec.PlannedStep.)"""

    file: str  # path relative to the run folder, e.g. "steps/01-sync-50.json"
    index: int | None
    mode: str
    rate: float
    label: str
    duration_s: float | None
    pre_allocated_vus: int | None = None
    max_vus: int | None = None
    work_ms: float | None = None
    gateway: dict[str, Any] = field(default_factory=dict)
    k6: dict[str, Any] | None = None
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
    meta: dict[str, Any]
    steps: list[StepRecord]
    warnings: list[str]
    display_label: str | None = None  # set by comparisons
    unreadable: list[UnreadableStep] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id") or self.path.name)

    @property
    def label(self) -> str:
        """Name for the run in comparisons."""
        return self.display_label or self.run_id


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    v = _num(value)
    return int(v) if v is not None else None


def step_from_dict(
    data: Any, file: str, warnings: list[str], spec: dict[str, Any] | None = None
) -> StepRecord | None:
    """Build a StepRecord from a parsed step file; problems are appended to `warnings`.

    Returns None (after a warning) if the step cannot be placed on a chart (no mode or rate).
    """
    spec = spec or {}
    if not isinstance(data, dict):
        warnings.append(f"{file}: not a JSON object; step skipped")
        return None
    if data.get("schema_version") not in (None, SCHEMA_VERSION):
        warnings.append(
            f"{file}: schema_version {data.get('schema_version')!r} (expected {SCHEMA_VERSION}); read anyway"
        )
    params = data.get("step")
    name_match = STEP_NAME.match(Path(file).name)
    if not isinstance(params, dict):
        if not name_match:
            warnings.append(f"{file}: no 'step' section and the file name does not say mode/rate; skipped")
            return None
        warnings.append(f"{file}: no 'step' section; mode and rate taken from the file name")
        params = {
            "index": int(name_match["index"]),
            "mode": name_match["mode"],
            "rate": float(name_match["rate"]),
        }
    mode = params.get("mode")
    rate = _num(params.get("rate"))
    if not isinstance(mode, str) or not mode:
        if name_match:
            mode = name_match["mode"]
            warnings.append(f"{file}: step.mode missing; '{mode}' taken from the file name")
        else:
            warnings.append(f"{file}: step.mode missing; step skipped")
            return None
    if mode not in ("sync", "async", "noop"):  # noop: `fab capacity --mode noop`, POST /noop
        warnings.append(f"{file}: unknown mode {mode!r} (expected sync, async or noop); charted as given")
    if rate is None or rate <= 0:
        if name_match:
            rate = float(name_match["rate"])
            warnings.append(f"{file}: step.rate missing or invalid; {rate:g} taken from the file name")
        else:
            warnings.append(f"{file}: step.rate missing or invalid; step skipped")
            return None
    label = params.get("label")
    if not isinstance(label, str) or not label:
        label = mode
    gateway = params.get("gateway") if isinstance(params.get("gateway"), dict) else {}
    if mode == "async" and str(gateway.get("PUBLISH_CONFIRM", "1")).lower() in NO_CONFIRM_VALUES:
        label += NO_CONFIRM_SUFFIX  # a 202 without the broker's confirm: every table says so

    k6 = data.get("k6")
    if not isinstance(k6, dict) or not isinstance(k6.get("metrics"), dict):
        warnings.append(f"{file}: no k6 summary (k6.metrics); client latency, throughput and drops missing")
        k6 = None

    duration = _num(params.get("duration_s"))
    if duration is None or duration <= 0:
        fallback = _num(spec.get("duration_s"))
        if fallback and fallback > 0:
            duration = fallback
            warnings.append(f"{file}: step.duration_s missing; the spec's duration_s ({duration:g} s) used")
        elif k6 and _num((k6.get("state") or {}).get("testRunDurationMs")):
            duration = k6["state"]["testRunDurationMs"] / 1000
            warnings.append(
                f"{file}: step.duration_s missing; k6's test run duration ({duration:.1f} s, incl. the "
                "graceful stop) used, throughput is understated"
            )
        else:
            duration = None
            warnings.append(f"{file}: step.duration_s missing; throughput not computed")

    step = StepRecord(
        file=file,
        index=_int(params.get("index")),
        mode=mode,
        rate=rate,
        label=label,
        duration_s=duration,
        pre_allocated_vus=_int(params.get("pre_allocated_vus")),
        max_vus=_int(params.get("max_vus")),
        work_ms=_num(params.get("work_ms")),
        gateway=gateway,
        k6=k6,
        core=data.get("core") if isinstance(data.get("core"), dict) else None,
        broker=data.get("broker") if isinstance(data.get("broker"), dict) else None,
        hosts=data.get("hosts") if isinstance(data.get("hosts"), dict) else None,
        started_at=data.get("started_at"),
        load_ended_at=data.get("load_ended_at"),
        ended_at=data.get("ended_at"),
        repeat=_int(params.get("repeat"))
        or (int(name_match["repeat"]) if name_match and name_match["repeat"] else 1),
        clock=data.get("clock") if isinstance(data.get("clock"), dict) else None,
        samples_file=(data.get("samples") or {}).get("file")
        if isinstance(data.get("samples"), dict)
        else None,
        hosts_timeline=data.get("hosts_timeline") if isinstance(data.get("hosts_timeline"), dict) else None,
        ledger=data.get("ledger") if isinstance(data.get("ledger"), dict) else None,
        instruments=params.get("instruments") if isinstance(params.get("instruments"), dict) else None,
        faults=data.get("faults") if isinstance(data.get("faults"), list) else [],
        limit=data.get("limit") if isinstance(data.get("limit"), dict) else None,
        core_settings=params.get("core") if isinstance(params.get("core"), dict) else {},
    )
    step.delay_queues = find_delay_queues(data, (step.broker or {}).get("queue"))

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
    if mode == "async":
        if step.core is None:
            warnings.append(f"{file}: async step without 'core' stats; completion latency and loss unknown")
        if step.broker is None:
            warnings.append(f"{file}: async step without 'broker' samples; backlog and drain time unknown")
    return step


def _read_json(path: Path, rel: str, warnings: list[str]) -> Any:
    """Parse a JSON file; on failure add a warning naming the file and return None."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        warnings.append(f"{rel}: cannot be read ({exc.strerror or exc}); skipped")
        return None
    if not text.strip():
        warnings.append(f"{rel}: empty file; skipped")
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        warnings.append(
            f"{rel}: not valid JSON, truncated or corrupt ({exc.msg} at line {exc.lineno} "
            f"column {exc.colno}, file is {len(text)} characters); skipped"
        )
        return None
    except UnicodeDecodeError:
        warnings.append(f"{rel}: not UTF-8 text; skipped")
        return None


def unreadable_step(rel: str) -> UnreadableStep:
    match = STEP_NAME.match(Path(rel).name)
    if not match:
        return UnreadableStep(file=rel, mode=None, rate=None)
    return UnreadableStep(
        file=rel,
        mode=match["mode"],
        rate=float(match["rate"]),
        repeat=int(match["repeat"]) if match["repeat"] else 1,
    )


def place_unreadable(unreadable: list[UnreadableStep], steps: list[StepRecord]) -> None:
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


def split_mixed_series(steps: list[StepRecord]) -> None:
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
        raise LoadError(f"{path} is not a folder (expected a run folder with run.json and steps/)")
    run_json = path / "run.json"
    if not run_json.exists():
        hint = " (it has a steps/ folder, but no run.json)" if (path / "steps").is_dir() else ""
        raise LoadError(f"{path} is not a run folder: run.json is missing{hint}")

    warnings: list[str] = []
    meta = _read_json(run_json, "run.json", warnings)
    if not isinstance(meta, dict):
        if meta is not None:
            warnings.append("run.json: not a JSON object; run details unknown")
        meta = {}
        warnings.append("run.json unusable: steps are taken from steps/*.json and the header is incomplete")
    else:
        if meta.get("schema_version") != SCHEMA_VERSION:
            warnings.append(
                f"run.json: schema_version {meta.get('schema_version')!r} (expected {SCHEMA_VERSION}); "
                "read anyway"
            )
        status = meta.get("status")
        if status not in (None, "complete"):
            warnings.append(
                f"run.json: run status is '{status}': the run did not finish, steps may be missing"
            )

    steps_dir = path / "steps"
    listed = meta.get("steps") if isinstance(meta.get("steps"), list) else None
    present = sorted(p.name for p in steps_dir.glob("*.json")) if steps_dir.is_dir() else []
    if not steps_dir.is_dir():
        warnings.append("steps/: folder missing")

    order: list[str] = []
    unreadable: list[UnreadableStep] = []
    if listed is not None:
        for name in listed:
            if not isinstance(name, str):
                warnings.append(f"run.json: steps list holds a non-name entry {name!r}; ignored")
                continue
            name = Path(name).name
            if name not in present:
                warnings.append(f"steps/{name}: listed in run.json but missing; step not charted")
                unreadable.append(unreadable_step(f"steps/{name}"))
                continue
            if name not in order:
                order.append(name)
        for name in present:
            if name not in order:
                warnings.append(f"steps/{name}: present but not listed in run.json; included")
                order.append(name)
    else:
        order = present

    spec = meta.get("spec") if isinstance(meta.get("spec"), dict) else {}
    steps: list[StepRecord] = []
    for name in order:
        rel = f"steps/{name}"
        data = _read_json(steps_dir / name, rel, warnings)
        step = None if data is None else step_from_dict(data, rel, warnings, spec)
        if step is None:
            unreadable.append(unreadable_step(rel))
        else:
            steps.append(step)
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
    return Run(path=path, meta=meta, steps=steps, warnings=warnings, unreadable=unreadable)
