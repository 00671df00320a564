"""What a step's timeline shows, gathered from its step file and run folder (docs/result-format.md,
"Per-second evidence"): the per-second client figures from the samples file, the queue, and each
host's CPU use and CPU waiting. Missing or unreadable parts become notes; offload_lab/analysis/timeline.py
draws the result."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..records import RecordError, read_step
from .delay_queues import find_delay_queues
from .samples import PerSecond, SamplesError, per_second, read_samples


@dataclass
class TimelineInputs:
    """What the timeline shows; times are seconds since t0."""

    rate: float | None = None
    duration_s: float | None = None
    load_start_s: float | None = None
    load_end_s: float | None = None  # k6 returned (includes the graceful-stop tail)
    seconds: PerSecond | None = None
    queue: np.ndarray | None = None  # rows [t, ready, unacked]
    # retries waiting for their backoff: delay queue name -> rows [t, messages] (delay_queues.py)
    delay_queues: dict[str, np.ndarray] = field(default_factory=dict)
    hosts: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # name -> (t, cpu %)
    # name -> (t, % of each second some task of the host waited for a CPU); absent in older steps
    cpu_waits: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # why a part is missing
    # what the step's instruments left out on purpose, "samples" and/or "hosts"
    # (offload_lab/plan/instruments.py)
    switched_off: set[str] = field(default_factory=set)

    @property
    def has_data(self) -> bool:
        return (
            (self.seconds is not None and len(self.seconds) > 0) or self.queue is not None or bool(self.hosts)
        )


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _queue(broker: dict[str, Any]) -> np.ndarray | None:
    rows = []
    for sample in broker.get("samples") or []:
        if not isinstance(sample, (list, tuple)) or len(sample) < 2:
            continue
        t, messages = _num(sample[0]), _num(sample[1])
        ready = _num(sample[2]) if len(sample) > 2 else None
        if t is None or messages is None:
            continue
        unacked = messages - ready if ready is not None else math.nan
        rows.append((t, ready if ready is not None else messages, unacked))
    return np.asarray(rows, dtype=np.float64) if rows else None


def _hosts(timeline: dict[str, Any], key: str = "samples") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One series of hosts_timeline (`samples`: CPU %, `cpu_wait_samples`: CPU waiting %) per host."""
    series: dict[str, list[tuple[float, float]]] = {}
    for sample in timeline.get(key) or []:
        if not isinstance(sample, (list, tuple)) or len(sample) < 2 or not isinstance(sample[1], dict):
            continue
        t = _num(sample[0])
        if t is None:
            continue
        for host, pct in sample[1].items():
            v = _num(pct)
            series.setdefault(str(host), []).append((t, v if v is not None else math.nan))
    out = {}
    for host, points in series.items():
        arr = np.asarray(sorted(points), dtype=np.float64)
        if np.isfinite(arr[:, 1]).any():
            out[host] = (arr[:, 0], arr[:, 1])
    return out


def timeline_inputs(step_json: dict[str, Any], run_dir: str | Path) -> TimelineInputs:
    """Gather the timeline from a parsed step file; missing or unreadable parts become notes."""
    data = _dict(step_json)
    params = _dict(data.get("step"))
    clock = _dict(data.get("clock"))
    broker = _dict(data.get("broker"))
    inputs = TimelineInputs(rate=_num(params.get("rate")), duration_s=_num(params.get("duration_s")))

    t0 = _num(clock.get("t0_unix_s"))
    started = _num(clock.get("load_started_unix_s"))
    ended = _num(clock.get("load_ended_unix_s"))
    if t0 is not None:
        inputs.load_start_s = started - t0 if started is not None else None
        inputs.load_end_s = ended - t0 if ended is not None else None
    if inputs.load_end_s is None:
        inputs.load_end_s = _num(broker.get("load_end_s"))

    instruments = _dict(_dict(data.get("step")).get("instruments"))
    if instruments.get("samples") is False:
        inputs.switched_off.add("samples")
    if instruments.get("host_sampling_s") == 0:
        inputs.switched_off.add("hosts")
    samples_ref = _dict(data.get("samples"))
    rel = samples_ref.get("file")
    if isinstance(rel, str) and rel:
        path = Path(run_dir) / rel
        try:
            samples = read_samples(path)
        except (OSError, SamplesError) as exc:
            inputs.notes.append(f"{rel}: {getattr(exc, 'strerror', None) or exc}")
            samples = None
        if samples is not None:
            if t0 is None:
                # no clock (should not happen with samples): start the axis at the first request
                firsts = [x.min() for x in (samples.req_start_s, samples.dropped_s) if x.size]
                if firsts:
                    t0 = float(min(firsts))
                    started = t0
                    inputs.load_start_s = 0.0
                    inputs.notes.append("no clock in the step file: time axis starts at the first request")
            if t0 is not None:
                inputs.seconds = per_second(samples, t0, started, inputs.duration_s, inputs.rate)
    else:
        inputs.notes.append("no per-request samples kept for this step")

    inputs.queue = _queue(broker)
    for name, delay_queue in find_delay_queues(data, broker.get("queue")).items():
        rows = [(t, n) for t, n in delay_queue.samples if n is not None]
        if rows:
            inputs.delay_queues[name] = np.asarray(rows, dtype=np.float64)
    inputs.hosts = _hosts(_dict(data.get("hosts_timeline")))
    inputs.cpu_waits = _hosts(_dict(data.get("hosts_timeline")), "cpu_wait_samples")
    return inputs


def step_json(step: Any, run_dir: str | Path) -> dict[str, Any]:
    """The parsed step file behind a load.LoadedStep (re-read from the run folder), with the
    LoadedStep's own fields on top when it has them; a dict is returned as it is."""
    if isinstance(step, dict):
        return step
    data: dict[str, Any] = {}
    rel = getattr(step, "file", None)
    if isinstance(rel, str):
        try:
            data = read_step(Path(run_dir) / rel).to_dict()
        except RecordError:
            data = {}
    for name in ("clock", "samples", "hosts_timeline", "broker"):
        value = getattr(step, name, None)
        if isinstance(value, dict):
            data[name] = value
    samples_file = getattr(step, "samples_file", None)  # load.LoadedStep keeps only the path
    if isinstance(samples_file, str) and samples_file:
        data["samples"] = {**_dict(data.get("samples")), "file": samples_file}
    params = dict(_dict(data.get("step")))
    for name in ("rate", "duration_s", "mode", "label", "repeat"):
        value = getattr(step, name, None)
        if value is not None:
            params[name] = value
    data["step"] = params
    return data
