"""What `fab sweep`, `fab check` and `fab report` do; fabfile.py only forwards options here.

Errors the user can fix raise `UsageError` (offload_lab.cli.usage)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..hosts import inventory as inventory_mod
from ..hosts.remote import RemoteError
from ..paths import REPO_ROOT, RESULTS_DIR
from ..plan import spec as spec_mod
from ..plan.core_spec import effective_core
from ..plan.fault_spec import fault_host_problems
from ..plan.instruments import describe as describe_instruments
from ..plan.limits import describe_limits, limit_of_step
from ..plan.overrides import OPTION_FOR_KEY, parse_overrides
from ..plan.spec import SpecError, SweepSpec
from ..plan.steps import estimate_seconds, expand_steps
from ..records import RUN_FILE
from ..run.connections import ProvisionedSettings
from ..run.results import make_run_id, newest_run
from ..run.signals import signals_interrupt
from ..run.sweep import Sweep, effective_gateway
from .run_start import connect, new_run_folder, require_preflight, run_record
from .usage import EXIT_FAILED, EXIT_INTERRUPTED, UsageError, echo

# --------------------------------------------------------------------------------------------
# planning: everything checked before any load


def plan_spec(spec_arg: str, options: dict[str, Any]):
    """Spec + overrides, validated (no inventory needed); raises UsageError naming what is wrong."""
    try:
        overrides = parse_overrides(options)
        spec = spec_mod.load(spec_arg, overrides, OPTION_FOR_KEY)
    except SpecError as exc:
        raise UsageError(f"{exc.source}:\n  " + "\n  ".join(exc.problems)) from exc
    return spec, overrides, expand_steps(spec)


def plan(spec_arg: str, options: dict[str, Any], inventory: str | None):
    """Spec + overrides + inventory, all validated; raises UsageError naming what is wrong."""
    spec, overrides, steps = plan_spec(spec_arg, options)
    try:
        lab = inventory_mod.load(inventory)
    except inventory_mod.InventoryError as exc:
        raise UsageError(str(exc)) from exc
    groups = {g: [h.name for h in hosts] for g, hosts in lab.groups.items()}
    problems = sorted(set(fault_host_problems([f for s in steps for f in s.faults], groups)))
    if problems:
        raise UsageError(f"{spec_arg} against {lab.source}:\n  " + "\n  ".join(problems))
    return spec, overrides, steps, lab


def plan_limits(steps, provisioned: ProvisionedSettings | None = None) -> list[str]:
    """Which stage limits each step (offload_lab.plan.limits), from the provisioned settings when known."""
    gateway = provisioned.gateway if provisioned else {}
    cores = list(provisioned.cores.values()) if provisioned and provisioned.cores else [{}]
    limits = [
        limit_of_step(s, effective_gateway(gateway, s.gateway), [effective_core(c, s.core) for c in cores])
        for s in steps
    ]
    source = "provisioned settings" if provisioned else "documented defaults"
    return [f"limits (Little's law, {source}):", *describe_limits(steps, limits)]


def plan_instruments(steps) -> list[str]:
    """The sweep's own instruments (offload_lab.plan.instruments): one line, or one per series."""
    by_label = {s.label: s.instruments for s in steps}
    if len(set(by_label.values())) <= 1:
        return [f"instruments: {describe_instruments(steps[0].instruments)}"] if steps else []
    return [f"instruments [{label}]: {describe_instruments(i)}" for label, i in by_label.items()]


def plan_core(steps) -> list[str]:
    """Each series' core settings, when the series switch different ones (the spec line shows
    the sweep's own): e.g. the failure rates of k6/sweeps/failures.yml."""
    by_label = {s.label: s.core for s in steps}
    if len({tuple(sorted(c.items())) for c in by_label.values()}) <= 1:
        return []
    return [
        f"core [{label}]: " + (" ".join(f"{k}={v}" for k, v in c.items()) or "as provisioned")
        for label, c in by_label.items()
    ]


def describe_plan(spec: SweepSpec, steps, lab=None, limits: bool = True) -> str:
    """The plan; `limits` False leaves the limits out (printed once the provisioned settings are read)."""
    lines = [
        f"spec {spec.name}: {len(steps)} steps, {spec.duration_s} s each, "
        f"VUs {spec.pre_allocated_vus}/{spec.max_vus}, work {spec.work_ms} ms, "
        f"order {spec.order}"
        + (", core " + " ".join(f"{k}={v}" for k, v in spec.core.items()) if spec.core else "")
        + (f", every point {spec.repeat} times" if spec.repeat > 1 else "")
        + f"; at least {estimate_seconds(spec):.0f} s plus drains",
        "  "
        + ", ".join(f"{s.rate} {s.mode}" + (f" [{s.label}]" if s.label != s.mode else "") for s in steps),
    ]
    lines += plan_core(steps) + plan_instruments(steps)
    if limits:
        lines += plan_limits(steps)
    if lab is not None:
        hosts = ", ".join(f"{g}={'/'.join(h.address for h in hs)}" for g, hs in lab.groups.items())
        lines.append(f"inventory {lab.source}: {hosts}")
    return "\n".join(lines)


def changed_overrides(spec_arg: str, spec: SweepSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides that changed what runs (one equal to the spec's own value did not)."""
    before, after = spec_mod.load(spec_arg).as_dict(), spec.as_dict()
    return {key: value for key, value in overrides.items() if after.get(key) != before.get(key)}


# --------------------------------------------------------------------------------------------
# commands


def check(
    spec_arg: str,
    options: dict[str, Any],
    inventory: str | None,
    preflight: bool = False,
    spec_only: bool = False,
) -> int:
    if spec_only:  # before the lab exists: the spec and its overrides alone
        spec, _, steps = plan_spec(spec_arg, options)
        echo(describe_plan(spec, steps))
        echo("ok (spec only)")
        return 0
    spec, overrides, steps, lab = plan(spec_arg, options, inventory)
    echo(describe_plan(spec, steps, lab, limits=not preflight))
    if preflight:
        real = connect(lab, "preflight")
        try:
            require_preflight(real)
            echo("\n".join(plan_limits(steps, real.settings())))
        finally:
            real.close()
        echo("preflight: every host and service answers")
    echo("ok")
    return 0


def sweep(
    spec_arg: str,
    options: dict[str, Any],
    inventory: str | None = None,
    results_dir: str | None = None,
    run_id: str | None = None,
) -> int:
    spec, overrides, steps, lab = plan(spec_arg, options, inventory)
    run_id = run_id or make_run_id(spec.name, changed_overrides(spec_arg, spec, overrides))
    folder = new_run_folder(results_dir, run_id)
    echo(describe_plan(spec, steps, lab, limits=False))

    real = connect(lab, run_id)
    try:
        require_preflight(real)
        provisioned = real.settings()
        echo("\n".join(plan_limits(steps, provisioned)))
        record, git_diff = run_record(
            spec, real, lab, provisioned, overrides=overrides, planned_steps=[s.filename for s in steps]
        )
        real.k6.prepare()
        echo(f"run {run_id} -> {folder.path}")
        with signals_interrupt():
            status = Sweep(
                spec,
                steps,
                real.sweep_services(),
                folder,
                provisioned.gateway,
                echo,
                provisioned_cores=list(provisioned.cores.values()),
            ).run(record, git_diff)
        with contextlib.suppress(RemoteError, KeyboardInterrupt):
            real.k6.cleanup()
    finally:
        real.close()
    t = folder.run.timing or {}
    echo(
        f"run {run_id}: {status}, {len(folder.run.steps)}/{len(steps)} steps in "
        f"{t.get('wall_s', 0):.0f} s: {t.get('duration_s_sum', 0):.0f} s of load, "
        f"{t.get('drain_s_sum', 0):.0f} s of drains, {t.get('cooldown_s_sum', 0):.0f} s of cooldowns, "
        f"the rest restarts and k6 start-up; results in {folder.path}"
    )
    if status == "complete":
        return 0
    return EXIT_INTERRUPTED if status == "interrupted" else EXIT_FAILED


def report(run_dir: str | None = None, results_dir: str | None = None) -> int:
    if run_dir:
        path = Path(run_dir)
        if not (path / RUN_FILE).is_file():
            raise UsageError(f"--run: {run_dir} is not a run folder (no {RUN_FILE})")
    else:
        path = newest_run(Path(results_dir) if results_dir else RESULTS_DIR)
        if path is None:
            raise UsageError(f"no run folder under {results_dir or RESULTS_DIR}: run `fab sweep` first")
    echo(f"report for {path}")
    return subprocess.run([sys.executable, "-m", "offload_lab.analysis", str(path)], cwd=REPO_ROOT).returncode
