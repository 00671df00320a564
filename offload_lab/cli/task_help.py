"""The help of every option of fab's tasks, as `fab --help TASK` shows it: what, type, default.
The overrides' own help is theirs (offload_lab.plan.overrides)."""

from __future__ import annotations

from ..plan.overrides import OVERRIDES

OVERRIDE_HELP = {option: f"{o.help} ({o.kind}; default: the spec's)" for option, o in OVERRIDES.items()}
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
CAPACITY_HELP = {
    "mode": "the path to measure: sync, async or noop (POST /noop: /async without the publish) "
    "(name; default: none, required without --suite)",
    "slo_p95_ms": "the SLO's p95 latency; sync: above the work time (number ms; default: 20)",
    "max_error_pct": "the most failed requests a passing probe may have (number %; default: 0.1)",
    "gateway": "gateway settings for every probe, e.g. GUNICORN_WORKERS=4 "
    "(KEY=VALUE,...; default: as provisioned)",
    "core": "core settings for every probe, e.g. PREFETCH=2000 (KEY=VALUE,...; default: as provisioned)",
    "start": "the first probe's rate, then x2 until one fails (integer req/s; default: 50)",
    "max_rate": "the highest rate probed (integer req/s; default: 5000)",
    "duration": "seconds of load per probe (integer s; default: 10)",
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
