"""What `fab capacity` does: one search (--mode) or a suite of them (--suite FILE [--only ...]).

Everything is checked before any load. Each search is a run folder whose steps are its probes
(offload_lab/run/sweep.py), with capacity.json and capacity.md beside them; a suite writes one
such folder per subject under results/<run-id>/ and the table of all of them
(offload_lab/capacity/suite_table.py) after every subject, so an interrupted suite still has the
table of what it measured."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..analysis.capacity_table import build_table, capacity_text, spread_text
from ..capacity import rejudge as capacity_rejudge
from ..capacity import search as capacity_search
from ..capacity import suite as capacity_suite
from ..capacity.probe import judge, shared_cpu_sets
from ..capacity.result import CapacityResult
from ..capacity.search import CapacityPlan
from ..capacity.suite_table import previous_suite, write_suite_table
from ..hosts import inventory as inventory_mod
from ..hosts.remote import RemoteError
from ..paths import RESULTS_DIR
from ..plan.capacity_fields import SEARCH_OPTIONS
from ..plan.spec import NAME_RE, SpecError
from ..records import CAPACITY_FILE, STEPS_DIR, SuiteRecord
from ..run.results import RunFolder, make_run_id, utcnow
from ..run.signals import signals_interrupt
from ..run.sweep import Sweep
from .run_start import connect, new_run_folder, require_preflight, run_record
from .usage import EXIT_FAILED, EXIT_INTERRUPTED, UsageError, echo

REPLACED_DIR = "_replaced"  # where --only moves a subject's previous folder


def capacity(
    options: dict[str, Any],
    inventory: str | None = None,
    results_dir: str | None = None,
    run_id: str | None = None,
    suite: str | None = None,
    only: str | None = None,
    rejudge: str | None = None,
) -> int:
    if rejudge:
        return run_rejudge(rejudge, options, suite, only)
    if suite:
        return run_suite(suite, options, only, inventory, results_dir, run_id)
    if only:
        raise UsageError("--only: names subjects of a suite: give --suite too")
    try:
        p = capacity_search.plan(options)
    except SpecError as exc:
        raise _usage(exc) from exc
    lab = _inventory(inventory)
    folder = new_run_folder(results_dir, run_id or make_run_id(p.spec.name))
    status, result = run_search(p, lab, folder, folder.run_id)
    if status == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_FAILED if status != "complete" or result.invalid else 0


def run_rejudge(path_arg: str, options: dict[str, Any], suite: str | None, only: str | None) -> int:
    """Judge a run's (or a suite's) probes again from their step files: no lab, no load."""
    given = [o for o in SEARCH_OPTIONS if options.get(o) not in (None, "")] + (["suite"] if suite else [])
    given += ["only"] if only else []
    if given:
        raise UsageError(f"--rejudge: judges what a run recorded; drop --{', --'.join(given)}")
    path = Path(path_arg)
    if not (path / CAPACITY_FILE).is_file():
        raise UsageError(f"--rejudge: {path_arg} has no {CAPACITY_FILE} (not a `fab capacity` run)")
    try:
        return capacity_rejudge.rejudge(path, echo)
    except capacity_rejudge.RejudgeError as exc:
        raise UsageError(f"--rejudge: {exc}") from exc


def _usage(exc: SpecError) -> UsageError:
    return UsageError(f"{exc.source}:\n  " + "\n  ".join(exc.problems))


def _inventory(inventory: str | None):
    try:
        return inventory_mod.load(inventory)
    except inventory_mod.InventoryError as exc:
        raise UsageError(str(exc)) from exc


def describe(p: CapacityPlan, name: str | None = None) -> str:
    settings = " ".join(f"{k}={v}" for k, v in {**p.spec.gateway, **p.spec.core}.items())
    repeats = (
        f", then the highest pass and the lowest failure {p.boundary_repeats} times each, interleaved"
        if p.boundary_repeats > 1
        else ""
    )
    return (
        f"capacity {name + ' (' + p.mode + ')' if name else p.mode}: from {p.start}/s x2 up to "
        f"{p.max_rate}/s, then bisect to {capacity_search.RESOLUTION:.0%}{repeats}, at most {p.max_probes} "
        f"probes of {p.spec.duration_s} s; SLO p95 <= {p.slo.p95_ms:g} ms, errors <= "
        f"{p.slo.max_error_pct:g} %, 0 dropped" + (f"; {settings}" if settings else "")
    )


def run_search(
    p: CapacityPlan, lab, folder: RunFolder, k6_run_id: str, name: str | None = None
) -> tuple[str, CapacityResult]:
    """One search on the lab into `folder`; returns the run's status and the result (written)."""
    echo(describe(p, name))
    search = capacity_search.CapacitySearch(p.start, p.max_rate, boundary_repeats=p.boundary_repeats)
    shared: dict[str, list[str]] = {}  # CPUs several hosts are pinned to, once the lab is read

    def judged(step, record) -> None:
        probe = judge(record, p.slo, shared)
        probe.step_file = f"{STEPS_DIR}/{step.filename}"
        search.record(probe)

    real = connect(lab, k6_run_id)
    try:
        require_preflight(real)
        provisioned = real.settings()
        search_meta = {
            "start": p.start,
            "max_rate": p.max_rate,
            "slo": vars(p.slo),
            "boundary_repeats": p.boundary_repeats,
        }
        record, git_diff = run_record(p.spec, real, lab, provisioned, capacity_search=search_meta)
        real.k6.prepare()
        shared.update(shared_cpu_sets(record.hosts))
        echo(f"run {folder.run_id} -> {folder.path}")
        steps = capacity_search.probe_steps(search, p)
        cores = list(provisioned.cores.values())
        sweep = Sweep(
            p.spec, steps, real.sweep_services(), folder, provisioned.gateway, echo, cores,
            total=p.max_probes, on_step=judged,
        )  # fmt: skip
        with signals_interrupt():
            status = sweep.run(record, git_diff)
        with contextlib.suppress(RemoteError, KeyboardInterrupt):
            real.k6.cleanup()
    finally:
        real.close()
    result = search.result(p.mode, p.slo)
    if status != "complete":
        result.stopped = f"the run {status}: {folder.run.error or 'no further probes'}"
    json_path, md_path = capacity_search.write_result(folder.path, result)
    folder.run.capacity = {"capacity_rps": result.capacity, "valid": not result.invalid}
    folder.save()
    for line in result.lines():
        echo(line)
    echo(f"written: {json_path}, {md_path}")
    return status, result


# --------------------------------------------------------------------------------------------
# a suite


def plan_suite(suite_arg: str, options: dict[str, Any], only: str | None):
    """The suite and the subjects to run, checked; UsageError naming every problem."""
    given = [o for o in SEARCH_OPTIONS if options.get(o) not in (None, "")]
    if given:
        flags = ", ".join("--" + o.replace("_", "-") for o in given)
        raise UsageError(f"--suite: the suite file sets every search's options; drop {flags}")
    try:
        suite = capacity_suite.load(suite_arg)
        names = [n.strip() for n in (only or "").split(",") if n.strip()]
        return suite, suite.select(names or None)
    except SpecError as exc:
        raise _usage(exc) from exc


def _suite_folder(results_dir: str | None, run_id: str | None, suite, rerun: bool) -> Path:
    """A new suite folder; with --only, an existing one of the same suite may be given."""
    base = Path(results_dir) if results_dir else RESULTS_DIR
    run_id = run_id or make_run_id(f"capacity-{suite.name}")
    if not NAME_RE.match(run_id):
        raise UsageError(f"--run-id: must be letters, digits, _ . - ; got {run_id!r}")
    path = base / run_id
    if path.exists() and any(path.iterdir()):
        existing = previous_suite(path)
        if not rerun:
            raise UsageError(f"--run-id: {path} already exists (with --only, subjects are run again into it)")
        if existing is None or existing.suite.get("name") != suite.name:
            raise UsageError(f"--run-id: {path} is not a run of the suite {suite.name!r}")
    return path


def run_suite(suite_arg, options, only, inventory, results_dir, run_id) -> int:
    suite, subjects = plan_suite(suite_arg, options, only)
    lab = _inventory(inventory)
    path = _suite_folder(results_dir, run_id, suite, rerun=bool(only))
    previous = previous_suite(path)
    path.mkdir(parents=True, exist_ok=True)
    text = capacity_suite.suite_file_text(suite)
    if text is not None:
        (path / "suite.yml").write_text(text, encoding="utf-8")
    names = [s.name for s in subjects]
    record = SuiteRecord(
        suite=suite.as_dict(),
        run_id=path.name,
        started_at=previous.started_at if previous else utcnow(),
        reruns=(previous.reruns if previous else []) + ([{"at": utcnow(), "only": names}] if only else []),
        status="running",
    )
    echo(f"suite {suite.name} ({suite.source}): {len(names)} subject(s): {', '.join(names)} -> {path}")
    for s in subjects:
        echo(f"  {describe(s.plan, s.name)}")
    statuses: dict[str, str] = {}
    try:
        for i, subject in enumerate(subjects, start=1):
            echo(f"== subject {i}/{len(subjects)}: {subject.name}")
            _move_aside(path, subject.name)
            folder = RunFolder(path, subject.name)
            folder.run_id = f"{path.name}.{subject.name}"  # the folder is the subject's; the id is unique
            statuses[subject.name] = "failed"  # until its search returns
            statuses[subject.name], _ = run_search(subject.plan, lab, folder, folder.run_id, subject.name)
            write_suite_table(path, record)
            if statuses[subject.name] == "interrupted":
                break
    except KeyboardInterrupt:
        statuses[next(reversed(statuses), "")] = "interrupted"
        raise
    finally:  # the table of what finished, also when the lab failed or Ctrl-C came between probes
        status = suite_status(suite, statuses, path)
        record = write_suite_table(path, replace(record, ended_at=utcnow(), status=status))
    echo(f"suite {suite.name}: {status}")
    for row in record.subjects:
        bottleneck = row.get("bottleneck") or "-"
        spread = spread_text(row) or "-"
        echo(f"  {row['subject']:<22} {capacity_text(row):<24} spread: {spread}; bottleneck: {bottleneck}")
    echo(
        f"written: {path / CAPACITY_FILE}, {path / 'capacity.md'}; "
        f"chart: python -m offload_lab.analysis {path}"
    )
    if status == "interrupted":
        return EXIT_INTERRUPTED
    invalid = any(r.get("valid") is False for r in record.subjects)
    return EXIT_FAILED if status == "failed" or invalid else 0


def suite_status(suite, statuses: dict[str, str], path: Path) -> str:
    """interrupted, failed (a search of this run did not complete), complete (every subject of
    the suite has a complete search in the folder) or partial (some were not run yet)."""
    if "interrupted" in statuses.values():
        return "interrupted"
    if any(v != "complete" for v in statuses.values()):
        return "failed"
    names = [s.name for s in suite.subjects]
    done = {r["subject"] for r in build_table(path, names)["subjects"] if r.get("status") == "complete"}
    return "complete" if done == set(names) else "partial"


def _move_aside(path: Path, name: str) -> None:
    """A subject run again (--only): its previous folder goes to _replaced/, never deleted."""
    old = path / name
    if not old.exists():
        return
    target = path / REPLACED_DIR / f"{name}-{utcnow().replace(':', '')}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(old), str(target))
    echo(f"{old} was run before: moved to {target}")
