"""The keys of a sweep spec (k6/sweeps/*.yml), in one table: every key once, with its type,
default, allowed range or choices, where it may stand (the sweep, a series, or both), the `fab
sweep`/`fab check` option that overrides it, the k6 environment variable that carries it to
k6/loadtest.js, and a one-line help.

Derived from this table: the defaults and checks of offload_lab/spec.py, the override options
and their help (offload_lab/cli_options.py, and so the fab tasks' options in fabfile.py), the
environment offload_lab/k6.py gives k6, and the "Keys" and "Command-line overrides" tables of
k6/sweeps/README.md (offload_lab/cli/spec_docs.py). Checked against it
(tests/sweep/test_spec_fields.py): the spec's records (SweepSpec, SeriesSpec), the variables
k6/loadtest.js reads and its own defaults, and the docs.

`fab capacity`'s table, in the same form, is offload_lab/plan/capacity_fields.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# what a value of each type is, as the docs' tables say it ({range}, {choices}: the field's);
# offload_lab/spec.py checks each type, offload_lab/cli_options.py reads each from an option's text
TYPES = {
    "name": "`[A-Za-z0-9][A-Za-z0-9_.-]*`, <= 64 chars",
    "text": "string",
    "rates": "list of distinct ints {range}, or `{{from, to, step}}`",
    "int": "int {range}",
    "number": "number {range}",
    "choice": "one of {choices}",
    "modes": "non-empty subset of {choices}",
    "gateway": "mapping of gateway settings",
    "core": "mapping of core settings",
    "instruments": "mapping of instruments",
    "series": "list of mappings of the `series` keys (column where)",
    "faults": "list of `{{action, at_s, duration_s, host}}`",
    "subjects": "list of mappings of the `subject` keys (column where)",
}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# where a key may stand
SWEEP = ("sweep",)
SERIES = ("series",)
SWEEP_AND_SERIES = ("sweep", "series")

MODES = ("sync", "async")
ORDERS = ("interleaved", "by_mode", "by_series")
MAX_RATE = 5000  # req/s: a spec's rates, and the most `fab capacity` probes
MAX_RATES = 100  # rates in one spec


class Required:
    """The default of a key a spec must set."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = Required()


@dataclass(frozen=True)
class SameAs:
    """The default of a key that takes another key's value."""

    key: str


@dataclass(frozen=True)
class K6Variable:
    """The environment variable that gives k6/loadtest.js a key's value for one step."""

    name: str
    step_attribute: str  # the PlannedStep attribute holding the step's value (one of `rates`: `rate`)
    suffix: str = ""  # k6 reads durations with their unit: 30 -> "30s"

    def text(self, value: Any) -> str:
        return f"{value}{self.suffix}"


@dataclass(frozen=True)
class SpecField:
    """One key of a spec file (a sweep spec here; a capacity suite in capacity_fields.py)."""

    key: str
    type: str  # a key of TYPES
    default: Any  # REQUIRED, SameAs(other key) or the value a spec without the key gets
    help: str  # one line: what the key means
    where: tuple[str, ...] = SWEEP
    range: tuple[float, float] | None = None  # inclusive bounds of an int or number, or of each rate
    choices: tuple[str, ...] = ()
    unit: str = ""  # what a number counts: s, ms, req/s, %
    option: str | None = None  # the fab task argument that overrides it (--max-vus: max_vus)
    option_example: str = ""  # a value of the option, for its help and the tests
    k6: K6Variable | None = None


FIELDS: tuple[SpecField, ...] = (
    SpecField("name", "name", REQUIRED, "goes into the run id `YYYYmmdd-HHMMSS-<name>`"),
    SpecField("description", "text", "", "free text"),
    SpecField(
        "rates",
        "rates",
        REQUIRED,
        f"offered rates (requests/s), one step each, at most {MAX_RATES}",
        range=(1, MAX_RATE),
        unit="req/s",
        option="rates",
        option_example="50:400:50",
        k6=K6Variable("RATE", "rate"),
    ),
    SpecField(
        "duration_s",
        "int",
        REQUIRED,
        "seconds of load per step",
        range=(1, 3600),
        unit="s",
        option="duration",
        option_example="10",
        k6=K6Variable("DURATION", "duration_s", "s"),
    ),
    SpecField(
        "max_vus",
        "int",
        REQUIRED,
        "k6 `maxVUs`, at least `pre_allocated_vus` (an override below the spec's pre-allocation "
        "lowers it too)",
        range=(1, 10000),
        option="max_vus",
        option_example="200",
        k6=K6Variable("MAX_VUS", "max_vus"),
    ),
    SpecField(
        "pre_allocated_vus",
        "int",
        SameAs("max_vus"),
        "k6 `preAllocatedVUs` (creating VUs mid-test drops iterations: keep it = `max_vus` unless "
        "reproducing the seed)",
        range=(1, 10000),
        option="pre_vus",
        option_example="50",
        k6=K6Variable("PRE_VUS", "pre_allocated_vus"),
    ),
    SpecField(
        "modes",
        "modes",
        list(MODES),
        "endpoints, `POST /sync` (expects 200) and `POST /async` (expects 202); a series' replace "
        "the sweep's, the option's replace every series'",
        where=SWEEP_AND_SERIES,
        choices=MODES,
        option="modes",
        option_example="async",
        k6=K6Variable("MODE", "mode"),
    ),
    SpecField(
        "work_ms",
        "int",
        1000,
        'body `{"work_ms": N}` of every request',
        range=(0, 60000),
        unit="ms",
        option="work_ms",
        option_example="500",
        k6=K6Variable("WORK_MS", "work_ms"),
    ),
    SpecField(
        "order",
        "choice",
        "interleaved",
        "in which order the steps run (see Order in k6/sweeps/README.md)",
        choices=ORDERS,
        option="order",
        option_example="by_mode",
    ),
    SpecField(
        "cooldown_s",
        "number",
        5,
        "pause between steps",
        range=(0, 600),
        unit="s",
        option="cooldown",
        option_example="0.5",
    ),
    SpecField(
        "drain_timeout_s",
        "number",
        120,
        "max wait after the end of load for the `tasks` queue to empty (and the core to be idle, "
        "and the delay queues of retries empty where sampled)",
        range=(0, 3600),
        unit="s",
        option="drain_timeout",
        option_example="60",
    ),
    SpecField(
        "request_timeout_s",
        "number",
        10,
        "k6 per-request timeout, above the work time (`work_ms`); gracefulStop = timeout + 2 s",
        range=(0.1, 600),
        unit="s",
        k6=K6Variable("TIMEOUT", "request_timeout_s", "s"),
    ),
    SpecField(
        "gateway",
        "gateway",
        {},
        "gateway settings for every step; a series' and the option's merged over the sweep's",
        where=SWEEP_AND_SERIES,
        option="gateway",
        option_example="PUBLISHER=pika_shared",
    ),
    SpecField(
        "core",
        "core",
        {},
        "core settings for every step; a series' and the option's merged over the sweep's (a list "
        "value keeps its commas: an item without `=` continues the value before it)",
        where=SWEEP_AND_SERIES,
        option="core",
        option_example="TRANSIENT_FAIL_RATE=0.1,RETRY_DELAYS_MS=500,2000",
    ),
    SpecField(
        "instruments",
        "instruments",
        {},
        "the sweep's own instruments for every step (unset ones: their defaults); a series' and "
        "the option's over the sweep's",
        where=SWEEP_AND_SERIES,
        option="instruments",
        option_example="ledger=off,samples=off",
    ),
    SpecField(
        "repeat",
        "int",
        1,
        "run every point (series, mode, rate) this many times, interleaved: all points once in "
        "`order`, then all again, so that drift on the host hits every series alike; step files "
        "get `-r<R>`",
        range=(1, 20),
        option="repeat",
        option_example="2",
    ),
    SpecField("series", "series", None, "repeat the rates once per series (e.g. per publisher)"),
    SpecField(
        "label",
        "name",
        REQUIRED,
        "the series' name, unique: its steps' `label` (without series, a step's label is its mode)",
        where=SERIES,
    ),
    SpecField(
        "faults",
        "faults",
        (),
        "performed during each step of the series (see Faults below)",
        where=SERIES,
    ),
)

BY_KEY: dict[str, SpecField] = {f.key: f for f in FIELDS}
SWEEP_FIELDS = tuple(f for f in FIELDS if "sweep" in f.where)
SERIES_FIELDS = tuple(f for f in FIELDS if "series" in f.where)
SWEEP_KEYS = tuple(f.key for f in SWEEP_FIELDS)
SERIES_KEYS = tuple(f.key for f in SERIES_FIELDS)
K6_VARIABLES = tuple(f.k6 for f in FIELDS if f.k6 is not None)
