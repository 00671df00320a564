"""k6 on N load generators as one: the same script on every loadgen, generator i with execution
segment i of one shared sequence, all started paused and resumed together once every one has
initialised its VUs; their results merged (offload_lab.loadgen.k6_merge). One loadgen: k6_for_loadgens
returns a plain RemoteK6, today's behaviour.

Started together: each k6 runs `--paused` with its REST API on the loadgen's loopback; when
`k6 status` says every one is paused with its VUs ready, `k6 resume` goes to all of them at
once, one thread each. Each resume's time (the host's clock) is kept with its summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..hosts.remote import Remote
from ..plan.steps import PlannedStep
from . import k6_merge
from .k6 import K6Error, RemoteK6, Segment

READY_TIMEOUT_S = 120  # k6 initialising its VUs (and the SSH connections) before the resume


def k6_for_loadgens(remotes: list[Remote], run_id: str, base_url: str) -> RemoteK6 | K6Fleet:
    """One RemoteK6 for one loadgen; a K6Fleet over their segments for several."""
    if len(remotes) == 1:
        return RemoteK6(remotes[0], run_id, base_url)
    n = len(remotes)
    sequence = k6_merge.segment_sequence(n)
    return K6Fleet(
        [
            RemoteK6(r, run_id, base_url, segment=Segment(k6_merge.execution_segment(i, n), sequence))
            for i, r in enumerate(remotes)
        ]
    )


class K6Fleet:
    reports_load_start = True  # run() says when the load began: the sweep's faults count from it

    def __init__(
        self,
        generators: list[RemoteK6],
        ready_timeout_s: float = READY_TIMEOUT_S,
        poll_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ):
        if len(generators) < 2 or any(g.segment is None for g in generators):
            raise ValueError("a fleet is two or more generators, each with its execution segment")
        self.generators = generators
        self.ready_timeout_s = ready_timeout_s
        self.poll_s = poll_s
        self.clock = clock

    def _each(self, fn: Callable[[RemoteK6], Any]) -> list[Any]:
        """fn on every generator at once; their results in generator order (an error re-raised)."""
        return self._each_of(self.generators, fn)

    def version(self) -> str | None:
        """k6's version (each distinct one, if the loadgens differ); None if a loadgen has none."""
        versions = self._each(lambda g: g.version())
        if any(v is None for v in versions):
            return None
        return "; ".join(dict.fromkeys(versions))

    def missing_k6(self) -> list[str]:
        """The loadgens without k6."""
        versions = self._each(lambda g: g.version())
        return [g.host for g, v in zip(self.generators, versions, strict=True) if not v]

    def prepare(self) -> None:
        self._each(lambda g: g.prepare())

    def cleanup(self) -> None:
        self._each(lambda g: g.cleanup())

    def run(self, step: PlannedStep, on_start: Callable[[float], None] | None = None) -> dict[str, Any]:
        """Run the step on every loadgen, started together; on_start gets the first resume's
        time (unix s). Returns the merged summary (its http_req_duration percentiles come with
        the samples: k6_merge.with_sample_trend)."""
        for g in self.generators:
            g.start(step)
        try:
            self._wait_ready()
            resumed = self._each(lambda g: g.resume())
            if on_start is not None:
                on_start(min(resumed))
            summaries = [g.wait() for g in self.generators]
        except KeyboardInterrupt:
            raise  # the sweep stops them and keeps their partial summaries (stop())
        except BaseException:
            self._each(lambda g: g.stop())  # none goes on loading the gateway alone
            raise
        return self._merged(summaries, resumed)

    def _wait_ready(self) -> None:
        deadline = self.clock() + self.ready_timeout_s
        waiting = list(self.generators)
        while waiting:
            for g in [g for g in waiting if g.finished]:
                g.wait()  # k6 exited before the resume: its error (K6Error) says why
                raise K6Error(f"k6 on {g.host} ended before it was resumed")
            ready = self._each_of(waiting, lambda g: g.paused_and_ready())
            waiting = [g for g, ok in zip(waiting, ready, strict=True) if not ok]
            if waiting and self.clock() > deadline:
                hosts = ", ".join(g.host for g in waiting)
                raise K6Error(f"k6 not ready to start after {self.ready_timeout_s:g} s on {hosts}")
            if waiting:
                time.sleep(self.poll_s)

    @staticmethod
    def _each_of(generators: list[RemoteK6], fn: Callable[[RemoteK6], Any]) -> list[Any]:
        with ThreadPoolExecutor(max_workers=len(generators)) as pool:
            return list(pool.map(fn, generators))

    def _merged(self, summaries: list[dict[str, Any]], resumed: list[float | None]) -> dict[str, Any]:
        merged = k6_merge.merge_summaries(summaries)
        merged.setdefault("offload", {})["generators"] = [
            {
                "host": g.host,
                "segment": g.segment.segment if g.segment else None,
                "segment_sequence": g.segment.sequence if g.segment else None,
                "resumed_unix_s": round(t, 3) if t is not None else None,
                "summary": s,
            }
            for g, s, t in zip(self.generators, summaries, resumed, strict=True)
        ]
        return merged

    def stop(self) -> dict[str, Any] | None:
        """Stop k6 on every loadgen; the partial summaries merged (None if none was written)."""
        partial = self._each(lambda g: g.stop())
        if any(s is None for s in partial):
            return None
        merged = self._merged(partial, [None] * len(partial))
        merged["offload"]["interrupted"] = True
        return merged

    def pull_samples(self, step: PlannedStep, local_path: Path) -> int | None:
        """Every generator's samples, merged into local_path (a `generator` column names the
        loadgen of each row); None if none left samples; K6Error if only some did."""
        local_path = Path(local_path)
        stem = local_path.name.removesuffix(".csv.gz")
        parts = [(g, local_path.with_name(f"{stem}.{g.host}.csv.gz")) for g in self.generators]
        try:
            rows = self._each_of([g for g, _ in parts], lambda g: g.pull_samples(step, dict(parts)[g]))
            missing = [g.host for (g, _), r in zip(parts, rows, strict=True) if r is None]
            if len(missing) == len(parts):
                return None
            if missing:
                raise K6Error(f"samples of {step.filename}: none from {', '.join(missing)}")
            return k6_merge.merge_sample_files([(g.host, path) for g, path in parts], local_path)
        finally:
            for _, path in parts:
                path.unlink(missing_ok=True)
