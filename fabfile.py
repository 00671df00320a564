"""Fabric tasks for offload-lab; the logic lives in offload_lab.cli (tested in tests/sweep/), the
options' help in offload_lab/cli/task_help.py. `fab --help TASK` lists a task's options.

fab sweep [--spec quick|seed|publishers|PATH] [overrides] [--inventory PATH] [--results-dir DIR]
          [--run-id ID]                          run a sweep into results/<run-id>/
          (overrides include --instruments ledger=off,samples=off: the sweep's own instruments)
fab check [--spec ...] [overrides] [--preflight | --spec-only]   validate, print the plan, no load
fab report [--run RUN_DIR]                       python -m offload_lab.analysis on a run (default: newest)
fab capacity --mode sync|async|noop [--slo-p95-ms 20] [--max-error-pct 0.1] [--gateway K=V,...]
          [--core K=V,...] [--start 50] [--max-rate 5000]   the highest rate within the SLO
fab capacity --suite lab|PATH [--only NAME,...] [--run-id ID]   one search per subject, one table
fab capacity --rejudge RUN_DIR                   judge a capacity run's probes again (no load)
"""

from fabric import task
from invoke.exceptions import Exit

from offload_lab.cli import capacity_commands, commands
from offload_lab.cli.task_help import CAPACITY_HELP, CHECK_HELP, REPORT_HELP, SWEEP_HELP
from offload_lab.cli.usage import UsageError


def _options(**kw):
    return {k: v for k, v in kw.items() if v is not None}


def _call(fn, *args, **kwargs):
    try:
        code = fn(*args, **kwargs)
    except UsageError as exc:
        raise Exit(f"error: {exc}", code=exc.code) from None
    if code:
        raise Exit(code=code)


# no short flags: invoke would give each task its own letters (-e was --order here, --results-dir
# there) and shadow fab's own (-d, -e, -i, -t, ...)
@task(help=SWEEP_HELP, auto_shortflags=False)
def sweep(
    c,
    spec="quick",
    rates=None,
    duration=None,
    max_vus=None,
    pre_vus=None,
    modes=None,
    work_ms=None,
    order=None,
    cooldown=None,
    drain_timeout=None,
    gateway=None,
    core=None,
    instruments=None,
    repeat=None,
    inventory=None,
    results_dir=None,
    run_id=None,
):
    """Run a sweep on the lab (k6 on the loadgen host) into results/<run-id>/.

    Options left unset take the spec's value (`fab check --spec NAME --spec-only` prints the plan).
    Example: fab sweep --spec quick --rates 50,100 --duration 10 --repeat 2
    """
    options = _options(
        rates=rates,
        duration=duration,
        max_vus=max_vus,
        pre_vus=pre_vus,
        modes=modes,
        work_ms=work_ms,
        order=order,
        cooldown=cooldown,
        drain_timeout=drain_timeout,
        gateway=gateway,
        core=core,
        instruments=instruments,
        repeat=repeat,
    )
    _call(commands.sweep, spec, options, inventory=inventory, results_dir=results_dir, run_id=run_id)


@task(help=CHECK_HELP, auto_shortflags=False)
def check(
    c,
    spec="quick",
    rates=None,
    duration=None,
    max_vus=None,
    pre_vus=None,
    modes=None,
    work_ms=None,
    order=None,
    cooldown=None,
    drain_timeout=None,
    gateway=None,
    core=None,
    instruments=None,
    repeat=None,
    inventory=None,
    preflight=False,
    spec_only=False,
):
    """Validate a spec, its overrides and the inventory; print the plan. Sends no load.

    Options left unset take the spec's value.
    Example: fab check --spec seed --rates 50:400:50 --preflight
    """
    options = _options(
        rates=rates,
        duration=duration,
        max_vus=max_vus,
        pre_vus=pre_vus,
        modes=modes,
        work_ms=work_ms,
        order=order,
        cooldown=cooldown,
        drain_timeout=drain_timeout,
        gateway=gateway,
        core=core,
        instruments=instruments,
        repeat=repeat,
    )
    _call(commands.check, spec, options, inventory, preflight=preflight, spec_only=spec_only)


@task(help=REPORT_HELP, auto_shortflags=False)
def report(c, run=None, results_dir=None):
    """Tables and charts for a run: python -m offload_lab.analysis RUN_DIR.

    Example: fab report --run results/20261127-135208-seed
    """
    _call(commands.report, run, results_dir)


@task(help=CAPACITY_HELP, auto_shortflags=False)
def capacity(
    c,
    mode=None,
    slo_p95_ms=None,
    max_error_pct=None,
    gateway=None,
    core=None,
    start=None,
    max_rate=None,
    duration=None,
    inventory=None,
    results_dir=None,
    run_id=None,
    suite=None,
    only=None,
    rejudge=None,
):
    """Find the highest rate one path sustains: p95 within the SLO, 0 dropped, errors at most
    --max-error-pct, k6 never short of VUs (sized by Little's law), async's backlog not growing.

    Probes of 10 s from --start, x2 until one fails, then bisected to 5 % (at most 12 probes),
    each a step of results/<run-id>/; capacity.json and capacity.md there name the capacity, the
    first failing rate, why it failed and the bottleneck its evidence shows.
    With --suite (k6/capacity/NAME.yml), one such search per subject into results/<run-id>/<subject>/
    and the table of all of them in results/<run-id>/capacity.json and capacity.md; the whole suite
    is checked before any load. --only NAME,... runs those subjects (again) into --run-id's folder.
    Example: fab capacity --mode async --slo-p95-ms 20 --core PREFETCH=2000
    --rejudge RUN_DIR judges a run's (or a suite's) probes again from their step files, no load.
    Example: fab capacity --suite lab
    """
    options = _options(
        mode=mode,
        slo_p95_ms=slo_p95_ms,
        max_error_pct=max_error_pct,
        gateway=gateway,
        core=core,
        start=start,
        max_rate=max_rate,
        duration=duration,
    )
    _call(
        capacity_commands.capacity,
        options,
        inventory=inventory,
        results_dir=results_dir,
        run_id=run_id,
        suite=suite,
        only=only,
        rejudge=rejudge,
    )
