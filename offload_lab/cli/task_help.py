"""The help of every option of fab's tasks, as `fab --help TASK` shows it (what, type, default),
and the task parameters fabfile.py's tasks get (task_options), from the field tables
(offload_lab/plan/spec_fields.py, capacity_fields.py) through offload_lab.plan.overrides."""

from __future__ import annotations

import inspect
from collections.abc import Iterable

from ..plan.capacity_fields import BY_OPTION as CAPACITY_BY_OPTION
from ..plan.overrides import OVERRIDES, option_help
from ..plan.spec_fields import REQUIRED, SpecField

# the help of every task option, as `fab --help TASK` shows it: what, type, default
OVERRIDE_HELP = {option: option_help(f, "the spec's") for option, f in OVERRIDES.items()}
SPEC_HELP = {
    "spec": "a spec in k6/sweeps/ (quick, seed, publishers) or a YAML file (name or path; default: quick)",
    "inventory": "Ansible inventory (path; default: the one ansible.cfg names)",
    **OVERRIDE_HELP,
}
SWEEP_HELP = {
    **SPEC_HELP,
    "results_dir": "where run folders go (path; default: results/)",
    "run_id": "run folder name (name; default: YYYYmmdd-HHMMSS-<spec>[-<overrides>])",
}
CHECK_HELP = {
    **SPEC_HELP,
    "preflight": "also check that every host and service answers, without load (flag; default: off)",
    "spec_only": "check the spec and overrides only, not the inventory: works before the lab is up (flag)",
}


def _capacity_default(spec_field: SpecField) -> str:
    if spec_field.default is REQUIRED:
        return "none, required without --suite"
    return "as provisioned" if spec_field.default == {} else str(spec_field.default)


CAPACITY_HELP = {
    **{option: option_help(f, _capacity_default(f)) for option, f in CAPACITY_BY_OPTION.items()},
    "inventory": SPEC_HELP["inventory"],
    "results_dir": SWEEP_HELP["results_dir"],
    "run_id": "run folder name (name; default: YYYYmmdd-HHMMSS-capacity-<mode or suite>; "
    "with --only: an earlier run of the suite)",
    "suite": "a capacity suite: a name in k6/capacity/ (lab) or a YAML file; sets every search's options "
    "(name or path; default: none, one search)",
    "only": "with --suite: the subjects to run, again into --run-id's folder if given (list; default: all)",
    "rejudge": "a capacity run or suite folder whose probes to judge again from their step files with "
    "today's rules, sending no load (path; default: none)",
}
REPORT_HELP = {
    "run": "a run folder (path; default: the newest under --results-dir)",
    "results_dir": "where run folders are (path; default: results/)",
}


def task_options(names: Iterable[str]):
    """Decorates a fab task body that takes its spec or search options as **options: the body's
    signature gets one keyword parameter per name (default None), which invoke makes the task's
    --options from, so that an option added to a field table needs no edit of fabfile.py."""

    def decorate(body):
        signature = inspect.signature(body)
        own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        added = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None) for n in names]
        body.__signature__ = signature.replace(parameters=own + added)
        return body

    return decorate
