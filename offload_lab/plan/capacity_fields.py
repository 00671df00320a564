"""The settings of a `fab capacity` search, in one table, in the form of the sweep spec's
(offload_lab/plan/spec_fields.py): each key of a capacity suite (k6/capacity/*.yml) once, with where
it may stand (the suite, a subject, or both), the `fab capacity` option that sets it for a single
search, its type, default, bounds and a one-line help.

Derived from this table: the defaults and bounds of offload_lab/capacity.py (options) and
offload_lab/capacity_suite.py (suite keys), the SLO's defaults (offload_lab/capacity_probe.Slo),
the help of `fab capacity`'s options and the options themselves (offload_lab/cli_options.py,
fabfile.py), and the "Keys" table of k6/capacity/README.md (offload_lab/cli/spec_docs.py).
tests/sweep/test_capacity_fields.py checks that no other place states another default.
"""

from __future__ import annotations

from .spec_fields import BY_KEY as SWEEP_FIELD
from .spec_fields import MAX_RATE, REQUIRED, SpecField

SUITE = ("suite",)
SUBJECT = ("subject",)
SUITE_AND_SUBJECT = ("suite", "subject")

CAPACITY_MODES = ("sync", "async", "noop")  # noop: POST /noop, /async's answer without the publish

FIELDS: tuple[SpecField, ...] = (
    SpecField(
        "name",
        "name",
        REQUIRED,
        "the suite's goes into the run id `YYYYmmdd-HHMMSS-capacity-<name>`; a subject's is its "
        "folder (unique, not `report`)",
        where=SUITE_AND_SUBJECT,
    ),
    SpecField("description", "text", "", "free text", where=SUITE_AND_SUBJECT),
    SpecField(
        "mode",
        "choice",
        REQUIRED,
        "the path to measure (noop: POST /noop, /async's answer without the publish)",
        where=SUBJECT,
        choices=CAPACITY_MODES,
        option="mode",
        option_example="async",
    ),
    SpecField(
        "slo_p95_ms",
        "number",
        20,
        "the SLO's p95 latency, every subject's (sync: above the work time)",
        where=SUITE,
        range=(0.1, 60000),
        unit="ms",
        option="slo_p95_ms",
        option_example="50",
    ),
    SpecField(
        "max_error_pct",
        "number",
        0.1,
        "the most failed requests a passing probe may have, every subject's",
        where=SUITE,
        range=(0, 100),
        unit="%",
        option="max_error_pct",
        option_example="1",
    ),
    SpecField(
        "duration_s",
        "int",
        10,
        "seconds of load per probe",
        where=SUITE_AND_SUBJECT,
        range=SWEEP_FIELD["duration_s"].range,
        unit="s",
        option="duration",
        option_example="5",
    ),
    SpecField(
        "start",
        "int",
        50,
        "the first probe's rate; x2 until one fails, then bisection to 5 %",
        where=SUITE_AND_SUBJECT,
        range=(1, MAX_RATE),
        unit="req/s",
        option="start",
        option_example="100",
    ),
    SpecField(
        "max_rate",
        "int",
        MAX_RATE,
        "the highest rate probed",
        where=SUITE_AND_SUBJECT,
        range=(1, MAX_RATE),
        unit="req/s",
        option="max_rate",
        option_example="800",
    ),
    SpecField(
        "boundary_repeats",
        "int",
        3,
        "how many probes the boundary's rates get (the highest passing, the lowest failing), "
        "interleaved; a repeat that flips a verdict walks on to the next rate; 1: none repeated",
        where=SUITE_AND_SUBJECT,
        range=(1, 10),
        option="boundary_repeats",
        option_example="1",
    ),
    SpecField(
        "work_ms",
        "int",
        SWEEP_FIELD["work_ms"].default,
        'body `{"work_ms": N}`; a `noop` subject sends 0 and may not set it',
        where=SUITE_AND_SUBJECT,
        range=SWEEP_FIELD["work_ms"].range,
        unit="ms",
    ),
    SpecField(
        "gateway",
        "gateway",
        {},
        "gateway settings for every probe, as in a sweep spec; a subject's merged over the suite's",
        where=SUITE_AND_SUBJECT,
        option="gateway",
        option_example="GUNICORN_WORKERS=4",
    ),
    SpecField(
        "core",
        "core",
        {},
        "core settings for every probe, as in a sweep spec; a subject's merged over the suite's",
        where=SUITE_AND_SUBJECT,
        option="core",
        option_example="PREFETCH=2000",
    ),
    SpecField(
        "subjects",
        "subjects",
        REQUIRED,
        "one search each, in this order, into the subject's folder",
        where=SUITE,
    ),
)

BY_KEY: dict[str, SpecField] = {f.key: f for f in FIELDS}
BY_OPTION: dict[str, SpecField] = {f.option: f for f in FIELDS if f.option}
SUITE_KEYS = tuple(f.key for f in FIELDS if "suite" in f.where)
SUBJECT_KEYS = tuple(f.key for f in FIELDS if "subject" in f.where)
# the options of one search (fab capacity); a suite file sets them per subject instead
SEARCH_OPTIONS = tuple(BY_OPTION)
