"""CPU use per host, second by second over a step: polls the hosts' counters in a thread and
records each interval's busy share (docs/result-format.md, `hosts_timeline`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .remote import cpu_pct

Snapshot = dict[str, dict[str, int] | None]


class CpuTimeline:
    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        t0: float,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.snapshot = snapshot
        self.t0 = t0  # the step's time zero, on `clock`
        self.interval_s = interval_s
        self.clock = clock
        self.samples: list[list[Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="cpu-timeline", daemon=True)
        self._thread.start()

    def _read(self) -> Snapshot:
        try:
            return self.snapshot()
        except Exception:
            return {}

    def _loop(self) -> None:
        before = self._read()
        next_at = self.clock() + self.interval_s
        while not self._stop.wait(max(0.0, next_at - self.clock())):
            after = self._read()
            t = round(self.clock() - self.t0, 3)
            per_host = {}
            for name, now in after.items():
                prev = before.get(name)
                per_host[name] = cpu_pct(prev, now) if prev and now else None
            self.samples.append([t, per_host])
            before = after
            next_at += self.interval_s

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return {"interval_s": self.interval_s, "samples": list(self.samples)}
