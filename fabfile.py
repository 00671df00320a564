"""Fabric tasks for offload-lab; the logic lives in offload_lab (tested in tests/sweep/).

fab sweep [--spec quick|seed|publishers|PATH] [--rates 50,100|50:400:50] [--duration 10]
          [--max-vus N] [--pre-vus N] [--modes sync,async] [--work-ms N] [--order interleaved]
          [--cooldown S] [--drain-timeout S] [--gateway KEY=VALUE,...] [--repeat N]
          [--inventory PATH] [--results-dir DIR] [--run-id ID]
fab check [same spec options] [--preflight | --spec-only]  validate spec + inventory, send no load
fab report [--run RUN_DIR]                       python -m analysis on a run (default: newest)
"""

from fabric import task
from invoke.exceptions import Exit

from offload_lab import cli

OVERRIDE_HELP = {
    "spec": "spec name in k6/sweeps/ or a path to a YAML file (default: quick)",
    "rates": "rates, e.g. 50,100,150 or FROM:TO:STEP like 50:400:50",
    "duration": "seconds per step",
    "max_vus": "k6 maxVUs",
    "pre_vus": "k6 preAllocatedVUs",
    "modes": "sync,async",
    "work_ms": "work time per request/task in ms",
    "order": "interleaved | by_mode | by_series",
    "cooldown": "seconds between steps",
    "drain_timeout": "max seconds to wait for the queue to drain after each step",
    "gateway": "gateway settings for every step, e.g. PUBLISHER=kombu_pool,PUBLISH_CONFIRM=0",
    "repeat": "run every point N times, interleaved (all points once, then all again)",
    "inventory": "Ansible inventory (default: the one ansible.cfg names)",
}


def _options(**kw):
    return {k: v for k, v in kw.items() if v is not None}


def _call(fn, *args, **kwargs):
    try:
        code = fn(*args, **kwargs)
    except cli.UsageError as exc:
        raise Exit(f"error: {exc}", code=exc.code) from None
    if code:
        raise Exit(code=code)


@task(
    help={
        **OVERRIDE_HELP,
        "results_dir": "where run folders go (default: results/)",
        "run_id": "run folder name (default: YYYYmmdd-HHMMSS-<spec>)",
    }
)
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
    repeat=None,
    inventory=None,
    results_dir=None,
    run_id=None,
):
    """Run a sweep on the lab (k6 on the loadgen host) into results/<run-id>/."""
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
        repeat=repeat,
    )
    _call(cli.sweep, spec, options, inventory=inventory, results_dir=results_dir, run_id=run_id)


@task(
    help={
        **OVERRIDE_HELP,
        "preflight": "also check that every host and service answers (no load)",
        "spec_only": "check the spec and its overrides only, not the inventory (works before the lab is up)",
    }
)
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
    repeat=None,
    inventory=None,
    preflight=False,
    spec_only=False,
):
    """Validate a spec, its overrides and the inventory; print the plan. Sends no load."""
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
        repeat=repeat,
    )
    _call(cli.check, spec, options, inventory, preflight=preflight, spec_only=spec_only)


@task(help={"run": "a run folder (default: the newest under results/)", "results_dir": "default results/"})
def report(c, run=None, results_dir=None):
    """Tables and charts for a run: python -m analysis RUN_DIR."""
    _call(cli.report, run, results_dir)
