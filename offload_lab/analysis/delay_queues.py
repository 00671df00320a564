"""The delay queues of a step (issue 22: retries with backoff): one queue per backoff delay,
`<task queue>.retry.<ms>` (docs/interfaces.md), whose depth the sweep samples with the task
queue's: `broker.retry_queues` (docs/result-format.md; offload_lab/services/retry_queues.py) holds
`"samples": [[s since t0, {queue: messages} or null], ...]` and `"max_length"`.

Read loosely, so that a run folder explains itself whichever way it was written: any mapping
in the step file (a few levels deep) with such `samples` (a sample's mapping naming delay
queues), any mapping whose `queue` names a delay queue and that has `samples` ([[s, messages,
...], ...], as the task queue's), any key naming a delay queue whose value has `samples` or is
the sample list itself. Their settings (`x-max-length`, `x-message-ttl`) come from the broker's
facts when the step recorded them (`broker.facts.queues`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

TASK_QUEUE = "tasks"
MAX_DEPTH = 4  # how deep into the step file to look


@dataclass
class DelayQueue:
    name: str
    samples: list[tuple[float, float | None]] = field(default_factory=list)  # (s since t0, messages)
    arguments: dict[str, Any] = field(default_factory=dict)  # as the broker's facts gave them
    limit: int | None = None  # the max length the step recorded (else the facts' x-max-length)

    @property
    def delay_ms(self) -> int | None:
        """The delay its name (or, else, its x-message-ttl) says."""
        suffix = self.name.rsplit(".", 1)[-1]
        if suffix.isdigit():
            return int(suffix)
        ttl = self.arguments.get("x-message-ttl")
        return ttl if isinstance(ttl, int) and not isinstance(ttl, bool) else None

    @property
    def max_length(self) -> int | None:
        n = self.limit if self.limit is not None else self.arguments.get("x-max-length")
        return n if isinstance(n, int) and not isinstance(n, bool) else None

    @property
    def depths(self) -> list[float]:
        return [n for _, n in self.samples if n is not None]

    @property
    def peak(self) -> float | None:
        return max(self.depths) if self.depths else None

    @property
    def peak_at_s(self) -> float | None:
        """When the peak was first sampled (s since t0)."""
        peak = self.peak
        return None if peak is None else next(t for t, n in self.samples if n == peak)

    @property
    def reached_max_length(self) -> bool:
        return self.max_length is not None and self.peak is not None and self.peak >= self.max_length


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _samples(value: Any) -> list[tuple[float, float | None]] | None:
    """[[t, messages, ...], ...] (or [{"t", "messages"}, ...]) as (t, messages); None when the
    value is no sample list."""
    if not isinstance(value, list):
        return None
    out = []
    for sample in value:
        if isinstance(sample, list | tuple) and len(sample) >= 2:
            t, n = _num(sample[0]), sample[1]
        elif isinstance(sample, dict):
            t, n = _num(sample.get("t")), sample.get("messages")
        else:
            continue
        if t is not None:
            out.append((t, _num(n)))
    return sorted(out, key=lambda s: s[0])


def find_delay_queues(data: Any, task_queue: str | None = None) -> dict[str, DelayQueue]:
    """Every delay queue the step file sampled, by name, in delay order; {} when none."""
    prefix = f"{task_queue if isinstance(task_queue, str) and task_queue else TASK_QUEUE}.retry."
    found: dict[str, DelayQueue] = {}
    arguments: dict[str, dict[str, Any]] = {}

    def take_combined(value: dict[str, Any]) -> bool:
        """`{"samples": [[t, {queue: n} or None], ...], "max_length": n}`: whether it is one."""
        listed = value.get("samples")
        samples = (
            [s for s in listed if isinstance(s, list | tuple) and len(s) >= 2]
            if isinstance(listed, list)
            else []
        )
        if not any(isinstance(s[1], dict) for s in samples):
            return False
        names = [q for q in value.get("queues") or [] if isinstance(q, str)]
        names += [q for s in samples if isinstance(s[1], dict) for q in s[1]]
        limit = value.get("max_length")
        for name in dict.fromkeys(n for n in names if isinstance(n, str) and n.startswith(prefix)):
            series = [(_num(s[0]), _num(s[1].get(name)) if isinstance(s[1], dict) else None) for s in samples]
            queue = DelayQueue(name, sorted(((t, n) for t, n in series if t is not None), key=lambda x: x[0]))
            queue.limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
            found.setdefault(name, queue)
        return True

    def take(name: str, value: Any) -> None:
        samples = _samples(value.get("samples") if isinstance(value, dict) else value)
        if samples is not None and name not in found:
            found[name] = DelayQueue(name, samples)
        if isinstance(value, dict) and isinstance(value.get("arguments"), dict):
            arguments.setdefault(name, value["arguments"])

    def walk(value: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        if isinstance(value, dict):
            queue = value.get("queue")
            if isinstance(queue, str) and queue.startswith(prefix):
                take(queue, value)
            elif take_combined(value):
                return
            for key, inner in value.items():
                if isinstance(key, str) and key.startswith(prefix):
                    take(key, inner)
                elif isinstance(inner, dict | list):
                    walk(inner, depth + 1)
        elif isinstance(value, list):
            for inner in value:
                if isinstance(inner, dict):
                    walk(inner, depth + 1)

    walk(data, 0)
    for name, queue in found.items():
        queue.arguments = arguments.get(name, {})
    return dict(sorted(found.items(), key=lambda kv: (kv[1].delay_ms is None, kv[1].delay_ms or 0, kv[0])))


def per_second(queue: DelayQueue) -> list[float | None]:
    """The depth in each whole second since t0: the last sample of that second (None: none)."""
    if not queue.samples:
        return []
    out: list[float | None] = [None] * (int(queue.samples[-1][0]) + 1)
    for t, n in queue.samples:
        if t >= 0:
            out[int(t)] = n
    return out
