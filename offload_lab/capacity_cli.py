"""What `fab capacity` does: one search (--mode) or a suite of them (--suite FILE [--only ...]).

Everything is checked before any load. Each search is a run folder whose steps are its probes
(offload_lab/sweep.py), with capacity.json and capacity.md beside them; a suite writes one such
folder per subject under results/<run-id>/ and the table of all of them (analysis.capacity_table)
after every subject, so an interrupted suite still has the table of what it measured."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

from analysis.capacity_table import SUITE_KIND, build_table, capacity_text, spread_text, table_markdown

from . import capacity as capacity_mod
from . import capacity_suite, cli
from . import inventory as inventory_mod
from .capacity import CapacityPlan
from .capacity_fields import SEARCH_OPTIONS
from .capacity_probe import judge, shared_cpu_sets
from .capacity_result import CapacityResult
from .connections import VHOST
from .paths import RESULTS_DIR
from .remote import RemoteError
from .results import RunFolder, make_run_id, utcnow, write_json
from .signals import signals_interrupt
from .spec import NAME_RE, SpecError
from .sweep import Sweep

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
        raise cli.UsageError("--only: names subjects of a suite: give --suite too")
    try:
        p = capacity_mod.plan(options)
    except SpecError as exc:
        raise _usage(exc) from exc
    lab = _inventory(inventory)
    folder = cli._new_folder(results_dir, run_id or make_run_id(p.spec.name))
    status, result = run_search(p, lab, folder, folder.run_id)
    if status == "interrupted":
        return cli.EXIT_INTERRUPTED
    return cli.EXIT_FAILED if status != "complete" or result.invalid else 0


def run_rejudge(path_arg: str, options: dict[str, Any], suite: str | None, only: str | None) -> int:
    """Judge a run's (or a suite's) probes again from their step files: no lab, no load."""
    from .capacity_rejudge import RejudgeError, rejudge

    given = [o for o in SEARCH_OPTIONS if options.get(o) not in (None, "")] + (["suite"] if suite else [])
    given += ["only"] if only else []
    if given:
        raise cli.UsageError(f"--rejudge: judges what a run recorded; drop --{', --'.join(given)}")
    path = Path(path_arg)
    if not (path / "capacity.json").is_file():
        raise cli.UsageError(f"--rejudge: {path_arg} has no capacity.json (not a `fab capacity` run)")
    try:
        return rejudge(path, cli.echo)
    except RejudgeError as exc:
        raise cli.UsageError(f"--rejudge: {exc}") from exc


def _usage(exc: SpecError) -> cli.UsageError:
    return cli.UsageError(f"{exc.source}:\n  " + "\n  ".join(exc.problems))


def _inventory(inventory: str | None):
    try:
        return inventory_mod.load(inventory)
    except inventory_mod.InventoryError as exc:
        raise cli.UsageError(str(exc)) from exc


def describe(p: CapacityPlan, name: str | None = None) -> str:
    settings = " ".join(f"{k}={v}" for k, v in {**p.spec.gateway, **p.spec.core}.items())
    repeats = (
        f", then the highest pass and the lowest failure {p.boundary_repeats} times each, interleaved"
        if p.boundary_repeats > 1
        else ""
    )
    return (
        f"capacity {name + ' (' + p.mode + ')' if name else p.mode}: from {p.start}/s x2 up to "
        f"{p.max_rate}/s, then bisect to {capacity_mod.RESOLUTION:.0%}{repeats}, at most {p.max_probes} "
        f"probes of {p.spec.duration_s} s; SLO p95 <= {p.slo.p95_ms:g} ms, errors <= "
        f"{p.slo.max_error_pct:g} %, 0 dropped" + (f"; {settings}" if settings else "")
    )


def run_search(
    p: CapacityPlan, lab, folder: RunFolder, k6_run_id: str, name: str | None = None
) -> tuple[str, CapacityResult]:
    """One search on the lab into `folder`; returns the run's status and the result (written)."""
    cli.echo(describe(p, name))
    search = capacity_mod.CapacitySearch(p.start, p.max_rate, boundary_repeats=p.boundary_repeats)
    shared: dict[str, list[str]] = {}  # CPUs several hosts are pinned to, once the lab is read

    def judged(step, data) -> None:
        probe = judge(data, p.slo, shared)
        probe.step_file = f"steps/{step.filename}"
        search.record(probe)

    real = cli.LabConnections(lab, k6_run_id, cli._password())
    try:
        cli._preflight(real)
        provisioned = real.settings()
        recorded = provisioned.recorded()
        recorded["broker"] = {"management_url": real.mgmt.base_url, "vhost": VHOST, "queue": real.task_queue}
        real.k6.prepare()
        meta = {
            "spec_name": p.spec.name,
            "spec": p.spec.as_dict(),
            "capacity_search": {
                "start": p.start,
                "max_rate": p.max_rate,
                "slo": vars(p.slo),
                "boundary_repeats": p.boundary_repeats,
            },
            **cli.git_info(),
            "versions": {"k6": real.k6.version(), **cli.local_versions(), "rabbitmq": real.mgmt.version()},
            "inventory": lab.source,
            "hosts": real.hosts_with_cpus(),
            "settings": recorded,
        }
        shared.update(shared_cpu_sets(meta["hosts"]))
        cli.echo(f"run {folder.run_id} -> {folder.path}")
        steps = capacity_mod.probe_steps(search, p)
        cores = list(provisioned.cores.values())
        sweep = Sweep(
            p.spec, steps, real.sweep_services(), folder, provisioned.gateway, cli.echo, cores,
            total=p.max_probes, on_step=judged,
        )  # fmt: skip
        with signals_interrupt():
            status = sweep.run(meta)
        with contextlib.suppress(RemoteError, KeyboardInterrupt):
            real.k6.cleanup()
    finally:
        real.close()
    result = search.result(p.mode, p.slo)
    if status != "complete":
        result.stopped = f"the run {status}: {folder.run.get('error', 'no further probes')}"
    json_path, md_path = capacity_mod.write_result(folder.path, result)
    folder.run["capacity"] = {"capacity_rps": result.capacity, "valid": not result.invalid}
    folder.save()
    for line in result.lines():
        cli.echo(line)
    cli.echo(f"written: {json_path}, {md_path}")
    return status, result


# --------------------------------------------------------------------------------------------
# a suite


def plan_suite(suite_arg: str, options: dict[str, Any], only: str | None):
    """The suite and the subjects to run, checked; UsageError naming every problem."""
    given = [o for o in SEARCH_OPTIONS if options.get(o) not in (None, "")]
    if given:
        flags = ", ".join("--" + o.replace("_", "-") for o in given)
        raise cli.UsageError(f"--suite: the suite file sets every search's options; drop {flags}")
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
        raise cli.UsageError(f"--run-id: must be letters, digits, _ . - ; got {run_id!r}")
    path = base / run_id
    if path.exists() and any(path.iterdir()):
        existing = _read_suite(path)
        if not rerun:
            raise cli.UsageError(
                f"--run-id: {path} already exists (with --only, subjects are run again into it)"
            )
        if existing is None or existing.get("suite", {}).get("name") != suite.name:
            raise cli.UsageError(f"--run-id: {path} is not a run of the suite {suite.name!r}")
    return path


def _read_suite(path: Path) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads((path / "capacity.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("kind") == SUITE_KIND else None


def write_suite_table(path: Path, suite: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """capacity.json and capacity.md of the suite folder, rebuilt from its subjects' folders
    (`suite`: the suite as recorded, Suite.as_dict)."""
    names = [s["name"] for s in suite["subjects"] if (path / s["name"] / "run.json").is_file()]
    table = build_table(path, names)
    data = {"kind": SUITE_KIND, "schema_version": 1, "suite": suite, **extra, **table}
    write_json(path / "capacity.json", data)
    (path / "capacity.md").write_text(table_markdown(data["suite"], table), encoding="utf-8")
    return data


def run_suite(suite_arg, options, only, inventory, results_dir, run_id) -> int:
    suite, subjects = plan_suite(suite_arg, options, only)
    lab = _inventory(inventory)
    path = _suite_folder(results_dir, run_id, suite, rerun=bool(only))
    previous = _read_suite(path) or {}
    path.mkdir(parents=True, exist_ok=True)
    text = capacity_suite.suite_file_text(suite)
    if text is not None:
        (path / "suite.yml").write_text(text, encoding="utf-8")
    extra = {
        "run_id": path.name,
        "started_at": previous.get("started_at") or utcnow(),
        "reruns": previous.get("reruns", []),
    }
    names = [s.name for s in subjects]
    if only:
        extra["reruns"].append({"at": utcnow(), "only": names})
    cli.echo(f"suite {suite.name} ({suite.source}): {len(names)} subject(s): {', '.join(names)} -> {path}")
    for s in subjects:
        cli.echo(f"  {describe(s.plan, s.name)}")
    statuses: dict[str, str] = {}
    try:
        for i, subject in enumerate(subjects, start=1):
            cli.echo(f"== subject {i}/{len(subjects)}: {subject.name}")
            _move_aside(path, subject.name)
            folder = RunFolder(path, subject.name)
            folder.run_id = f"{path.name}.{subject.name}"  # the folder is the subject's; the id is unique
            statuses[subject.name] = "failed"  # until its search returns
            statuses[subject.name], _ = run_search(subject.plan, lab, folder, folder.run_id, subject.name)
            write_suite_table(path, suite.as_dict(), {**extra, "ended_at": None, "status": "running"})
            if statuses[subject.name] == "interrupted":
                break
    except KeyboardInterrupt:
        statuses[next(reversed(statuses), "")] = "interrupted"
        raise
    finally:  # the table of what finished, also when the lab failed or Ctrl-C came between probes
        status = suite_status(suite, statuses, path)
        data = write_suite_table(path, suite.as_dict(), {**extra, "ended_at": utcnow(), "status": status})
    cli.echo(f"suite {suite.name}: {status}")
    for row in data["subjects"]:
        bottleneck = row.get("bottleneck") or "-"
        spread = spread_text(row) or "-"
        cli.echo(
            f"  {row['subject']:<22} {capacity_text(row):<24} spread: {spread}; bottleneck: {bottleneck}"
        )
    cli.echo(f"written: {path / 'capacity.json'}, {path / 'capacity.md'}; chart: python -m analysis {path}")
    if status == "interrupted":
        return cli.EXIT_INTERRUPTED
    invalid = any(r.get("valid") is False for r in data["subjects"])
    return cli.EXIT_FAILED if status == "failed" or invalid else 0


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
    cli.echo(f"{old} was run before: moved to {target}")
