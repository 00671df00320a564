"""Fabric tasks for offload-lab; the logic lives in offload_lab.cli (tested in tests/sweep/), the
options' help in offload_lab/cli/task_help.py. `fab --help TASK` lists a task's options.

fab sweep [--spec quick|seed|publishers|PATH] [overrides] [--inventory PATH] [--results-dir DIR]
          [--run-id ID]                          run a sweep into results/<run-id>/
          (overrides include --instruments ledger=off,samples=off: the sweep's own instruments)
fab check [--spec ...] [overrides] [--preflight | --spec-only]   validate, print the plan, no load
fab report [--run RUN_DIR]                       python -m offload_lab.analysis on a run (default: newest)
fab capacity --mode sync|async|noop [--slo-p95-ms MS] [--max-error-pct PCT] [--gateway K=V,...]
          [--core K=V,...] [--start RATE] [--max-rate RATE] [--boundary-repeats N]
                                                 the highest rate within the SLO, with its spread
          (`fab --help capacity`: each option's default)
fab capacity --suite lab|PATH [--only NAME,...] [--run-id ID]   one search per subject, one table
fab capacity --rejudge RUN_DIR                   judge a capacity run's probes again (no load)
"""

from fabric import task
from invoke.exceptions import Exit

from offload_lab.cli import capacity_commands, commands
from offload_lab.cli.task_help import CAPACITY_HELP, CHECK_HELP, REPORT_HELP, SWEEP_HELP, task_options
from offload_lab.cli.usage import UsageError
from offload_lab.plan.capacity_fields import SEARCH_OPTIONS
from offload_lab.plan.overrides import OVERRIDES


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
# there) and shadow fab's own (-d, -e, -i, -t, ...). The spec's overrides and capacity's search
# options come from the field tables (offload_lab/plan/spec_fields.py, capacity_fields.py): task_options
# gives each task one --option per entry.
@task(help=SWEEP_HELP, auto_shortflags=False)
@task_options(OVERRIDES)
def sweep(c, spec="quick", inventory=None, results_dir=None, run_id=None, **overrides):
    """Run a sweep on the lab (k6 on the loadgen host) into results/<run-id>/.

    Options left unset take the spec's value (`fab check --spec NAME --spec-only` prints the plan).
    Example: fab sweep --spec quick --rates 50,100 --duration 10 --repeat 2
    """
    _call(
        commands.sweep,
        spec,
        _options(**overrides),
        inventory=inventory,
        results_dir=results_dir,
        run_id=run_id,
    )


@task(help=CHECK_HELP, auto_shortflags=False)
@task_options(OVERRIDES)
def check(c, spec="quick", inventory=None, preflight=False, spec_only=False, **overrides):
    """Validate a spec, its overrides and the inventory; print the plan. Sends no load.

    Options left unset take the spec's value.
    Example: fab check --spec seed --rates 50:400:50 --preflight
    """
    _call(commands.check, spec, _options(**overrides), inventory, preflight=preflight, spec_only=spec_only)


@task(help=REPORT_HELP, auto_shortflags=False)
def report(c, run=None, results_dir=None):
    """Tables and charts for a run: python -m offload_lab.analysis RUN_DIR.

    Example: fab report --run results/20261127-135208-seed
    """
    _call(commands.report, run, results_dir)


@task(help=CAPACITY_HELP, auto_shortflags=False)
@task_options(SEARCH_OPTIONS)
def capacity(c, inventory=None, results_dir=None, run_id=None, suite=None, only=None, rejudge=None, **search):
    """Find the highest rate one path sustains: p95 within the SLO, 0 dropped, errors at most
    --max-error-pct, k6 never short of VUs (sized by Little's law), async's backlog not growing.

    Probes of --duration seconds from --start, x2 until one fails, then bisected to 5 % (at most
    12 probes), then the highest pass and the lowest failure --boundary-repeats times each,
    interleaved, each probe a step of results/<run-id>/; capacity.json and capacity.md there name
    the capacity (a rate that passed in every repeat) with its spread, the first failing rate,
    why it failed and the bottleneck its evidence shows.
    With --suite (k6/capacity/NAME.yml), one such search per subject into results/<run-id>/<subject>/
    and the table of all of them in results/<run-id>/capacity.json and capacity.md; the whole suite
    is checked before any load. --only NAME,... runs those subjects (again) into --run-id's folder.
    Example: fab capacity --mode async --slo-p95-ms 20 --core PREFETCH=2000
    --rejudge RUN_DIR judges a run's (or a suite's) probes again from their step files, no load.
    Example: fab capacity --suite lab
    """
    _call(
        capacity_commands.capacity,
        _options(**search),
        inventory=inventory,
        results_dir=results_dir,
        run_id=run_id,
        suite=suite,
        only=only,
        rejudge=rejudge,
    )
