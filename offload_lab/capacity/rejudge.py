"""`fab capacity --rejudge RUN_DIR`: judge a capacity run's probes again from their step files,
with today's rules (offload_lab/capacity/probe.py), without sending any load; for a suite, every
subject it lists, then its table. The probes keep their rates and order (the search and its
repeats already chose them); a verdict that changes is reported, and the capacity and its spread
follow the new verdicts. A run from before boundary repeats has one probe per rate: its spread
is unknown, and says so."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..records import (
    CAPACITY_FILE,
    STEPS_DIR,
    RecordError,
    is_suite_table,
    read_json,
    read_run,
    read_step,
    read_suite,
    write_run,
)
from ..run.results import utcnow
from .probe import Slo, judge, shared_cpu_sets
from .result import CapacityResult
from .search import write_result
from .suite_table import write_suite_table


class RejudgeError(Exception):
    pass


def _read(path: Path, read) -> Any:
    try:
        return read(path)
    except RecordError as exc:
        raise RejudgeError(f"{path}: {exc}") from exc


def rejudge_run(folder: Path) -> tuple[CapacityResult, list[int]]:
    """Judge one `fab capacity` run folder again; writes its capacity.json and capacity.md and
    returns the result and the rates whose verdict changed."""
    run, before = _read(folder, read_run), _read(folder / CAPACITY_FILE, read_json)
    if not isinstance(before, dict):
        raise RejudgeError(f"{folder / CAPACITY_FILE}: not a JSON object")
    search_meta = run.capacity_search or {}
    slo = Slo(**(search_meta.get("slo") or {}))
    shared = shared_cpu_sets(run.hosts)
    old = {p.get("step_file"): p.get("passed") for p in before.get("probes") or []}
    probes, changed = [], []
    for name in run.steps:
        probe = judge(_read(folder / STEPS_DIR / name, read_step), slo, shared)
        probe.step_file = f"{STEPS_DIR}/{name}"
        probes.append(probe)
        if old.get(probe.step_file) not in (None, probe.passed) and probe.rate not in changed:
            changed.append(probe.rate)
    modes = run.spec.get("modes") or [before.get("mode")]
    boundary_repeats = search_meta.get("boundary_repeats")  # None: a run from before repeats
    stopped = before.get("stopped")  # why the search ended when it ran
    result = CapacityResult.of(modes[0], slo, probes, stopped, boundary_repeats)
    result.extra["rejudged"] = {"at": utcnow(), "verdicts_changed": changed}
    write_result(folder, result)
    run.capacity = {"capacity_rps": result.capacity, "valid": not result.invalid}
    write_run(folder, run)
    return result, changed


def rejudge(path: Path, echo) -> int:
    """A single run or a suite; returns 0, or 1 when a verdict changed (the search would have
    probed other rates: run it again)."""
    top = _read(path / CAPACITY_FILE, read_json)
    suite = _read(path, read_suite) if is_suite_table(top) else None
    folders = [path] if suite is None else [path / row["subject"] for row in suite.subjects]
    any_changed = False
    for folder in folders:
        if not (folder / CAPACITY_FILE).is_file():
            echo(f"{folder.name}: no capacity.json (its search did not finish): left as it is")
            continue
        result, changed = rejudge_run(folder)
        any_changed = any_changed or bool(changed)
        flips = f"; verdicts changed at {', '.join(map(str, changed))}/s" if changed else ""
        echo(f"{folder.name}: {result.headline()}; bottleneck {result.bottleneck_text()}{flips}")
        echo(f"{folder.name}: spread: {result.spread.text()}")
    if suite is not None:
        write_suite_table(path, replace(suite, rejudged_at=utcnow()))
        echo(f"written: {path / CAPACITY_FILE}, {path / 'capacity.md'}")
    return 1 if any_changed else 0
