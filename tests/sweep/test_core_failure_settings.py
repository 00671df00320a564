"""The core's failure and retry settings a spec may switch (`core:`: TRANSIENT_FAIL_RATE,
PERMANENT_FAIL_RATE, RETRY_DELAYS_MS, RETRY_QUEUE_MAX_LENGTH): the same defaults and limits as
the core's own config and the core_go role, checked before any load with the setting named, a
list taken as YAML or as text (also from `--core`), and the failures spec that publishes them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from offload_lab.cli.commands import plan_core
from offload_lab.plan import spec
from offload_lab.plan.core_spec import (
    CORE_DEFAULTS,
    CORE_SETTINGS,
    MAX_RETRY_DELAY_MS,
    MAX_RETRY_DELAYS,
    fail_rate,
    retry_delays_ms,
    retry_queue_max_length,
)
from offload_lab.plan.core_values import Delays, Fraction, IntRange
from offload_lab.plan.overrides import OPTION_FOR_KEY, OVERRIDES, option_text, parse_overrides
from offload_lab.plan.spec import SpecError
from offload_lab.plan.steps import estimate_seconds, expand_steps

REPO = Path(__file__).resolve().parents[2]
# the core's config package: config.go and the files beside it (retry.go), tests left out
CONFIG_GO = "\n".join(
    p.read_text()
    for p in sorted((REPO / "core-go/internal/config").glob("*.go"))
    if not p.name.endswith("_test.go")
)
ROLE_DEFAULTS = yaml.safe_load((REPO / "roles/core_go/defaults/main.yml").read_text())
GOOD = {"name": "t", "rates": [50], "duration_s": 1, "max_vus": 10, "cooldown_s": 0, "drain_timeout_s": 1}
BY_NAME = {s.name: s for s in CORE_SETTINGS}


def _go_field(env_name: str) -> str:
    """The Config field the variable sets: `env("NAME", kind(&c.Field))`, else the field after
    the struct comment that names it (`// RETRY_DELAYS_MS: ...` over `RetryDelaysMS []int`)."""
    match = re.search(rf'env\("{env_name}", \w+\(&c\.(\w+)\)\)', CONFIG_GO)
    if match:
        return match[1]
    struct = CONFIG_GO[CONFIG_GO.index("type Config struct") :]
    struct = struct[: struct.index("\n}\n")]
    match = re.search(rf"^\s*//\s*{env_name}\b.*?\n(?:\s*//.*\n)*\s*(\w+)\s", struct, re.MULTILINE)
    assert match, f"no field of Config for {env_name}"
    return match[1]


def _go_default(env_name: str) -> str | None:
    """The value Defaults() gives that field (None: not set there, Go's zero value)."""
    defaults = CONFIG_GO[CONFIG_GO.index("func Defaults()") :]
    defaults = defaults[: defaults.index("\n}\n")]
    match = re.search(rf"^\s*{_go_field(env_name)}:\s*(.+),\s*$", defaults, re.MULTILINE)
    return match[1] if match else None


def _go_const(name: str) -> int:
    match = re.search(rf"\b{name}\s*=\s*([\d_]+)", CONFIG_GO)
    assert match, f"no constant {name} in the core's config"
    return int(match[1].replace("_", ""))


def _ints(text: str) -> list[int]:
    return [int(n.replace("_", "")) for n in re.findall(r"\d[\d_]*", text)]


def test_the_defaults_are_the_cores_and_the_roles():
    for rate in ("TRANSIENT_FAIL_RATE", "PERMANENT_FAIL_RATE"):
        assert isinstance(BY_NAME[rate].kind, Fraction) and CORE_DEFAULTS[rate] == "0"
        assert f'env("{rate}", float(' in CONFIG_GO, rate
        assert _go_default(rate) in (None, "0", "0.0"), rate
    assert CORE_DEFAULTS["RETRY_DELAYS_MS"] == "1000,4000,16000"
    assert _go_field("RETRY_DELAYS_MS") == "RetryDelaysMS"
    assert _ints(_go_default("RETRY_DELAYS_MS") or "") == [1000, 4000, 16000]
    assert CORE_DEFAULTS["RETRY_QUEUE_MAX_LENGTH"] == "100000"
    assert 'env("RETRY_QUEUE_MAX_LENGTH", integer(' in CONFIG_GO
    assert _ints(_go_default("RETRY_QUEUE_MAX_LENGTH") or "") == [100000]
    # the role provisions the core's defaults
    assert ROLE_DEFAULTS["core_go_transient_fail_rate"] == ROLE_DEFAULTS["core_go_permanent_fail_rate"] == 0
    assert ",".join(map(str, ROLE_DEFAULTS["core_go_retry_delays_ms"])) == CORE_DEFAULTS["RETRY_DELAYS_MS"]
    assert str(ROLE_DEFAULTS["core_go_retry_queue_max_length"]) == CORE_DEFAULTS["RETRY_QUEUE_MAX_LENGTH"]
    assert "core_go_fail_rate" not in ROLE_DEFAULTS


def test_the_limits_are_the_cores():
    delays, length = BY_NAME["RETRY_DELAYS_MS"].kind, BY_NAME["RETRY_QUEUE_MAX_LENGTH"].kind
    assert isinstance(delays, Delays) and isinstance(length, IntRange)
    assert (delays.lo, delays.hi, delays.max_count) == (1, MAX_RETRY_DELAY_MS, MAX_RETRY_DELAYS)
    assert MAX_RETRY_DELAY_MS == _go_const("MaxRetryDelayMS") == 3_600_000
    assert MAX_RETRY_DELAYS == _go_const("MaxRetryDelays") == 10
    assert (length.lo, length.hi) == (1, _go_const("MaxRetryQueueLength")) == (1, 10_000_000)
    # an empty RETRY_DELAYS_MS is no retry for the core too, not "unset"
    assert 'lookupEnv("RETRY_DELAYS_MS")' in CONFIG_GO


@pytest.mark.parametrize(
    "value, expected",
    [
        (
            {"TRANSIENT_FAIL_RATE": 0.1, "PERMANENT_FAIL_RATE": 0},
            {"TRANSIENT_FAIL_RATE": "0.1", "PERMANENT_FAIL_RATE": "0.0"},
        ),
        (
            {"TRANSIENT_FAIL_RATE": "0.01", "PERMANENT_FAIL_RATE": 1},
            {"TRANSIENT_FAIL_RATE": "0.01", "PERMANENT_FAIL_RATE": "1.0"},
        ),
        ({"RETRY_DELAYS_MS": [1000, 4000, 16000]}, {"RETRY_DELAYS_MS": "1000,4000,16000"}),
        ({"RETRY_DELAYS_MS": "500, 2000"}, {"RETRY_DELAYS_MS": "500,2000"}),
        ({"RETRY_DELAYS_MS": ["1", "3600000"]}, {"RETRY_DELAYS_MS": "1,3600000"}),
        ({"RETRY_DELAYS_MS": 250}, {"RETRY_DELAYS_MS": "250"}),
        ({"RETRY_DELAYS_MS": []}, {"RETRY_DELAYS_MS": ""}),  # no retry
        ({"RETRY_DELAYS_MS": ""}, {"RETRY_DELAYS_MS": ""}),
        ({"RETRY_DELAYS_MS": list(range(1, 11))}, {"RETRY_DELAYS_MS": "1,2,3,4,5,6,7,8,9,10"}),
        ({"RETRY_QUEUE_MAX_LENGTH": 10}, {"RETRY_QUEUE_MAX_LENGTH": "10"}),
    ],
)
def test_good_values_become_what_the_core_reads(value, expected):
    assert spec.apply_overrides({**GOOD, "core": value}, {}).core == expected


@pytest.mark.parametrize(
    "value, problem",
    [
        ({"TRANSIENT_FAIL_RATE": 1.5}, "core.TRANSIENT_FAIL_RATE: must be between 0 and 1, got 1.5"),
        ({"TRANSIENT_FAIL_RATE": -0.1}, "core.TRANSIENT_FAIL_RATE: must be between 0 and 1"),
        ({"TRANSIENT_FAIL_RATE": "often"}, "core.TRANSIENT_FAIL_RATE: must be a number, got 'often'"),
        ({"TRANSIENT_FAIL_RATE": True}, "core.TRANSIENT_FAIL_RATE: must be a number"),
        ({"PERMANENT_FAIL_RATE": "nan"}, "core.PERMANENT_FAIL_RATE: must be a number between 0 and 1"),
        ({"PERMANENT_FAIL_RATE": "10%"}, "core.PERMANENT_FAIL_RATE: must be a number, got '10%'"),
        (
            {"RETRY_DELAYS_MS": [4000, 1000]},
            "core.RETRY_DELAYS_MS: must be strictly ascending (a backoff), got [4000, 1000]",
        ),
        ({"RETRY_DELAYS_MS": [1000, 1000]}, "core.RETRY_DELAYS_MS: must be strictly ascending"),
        ({"RETRY_DELAYS_MS": [0, 1000]}, "core.RETRY_DELAYS_MS[0]: must be between 1 and 3600000, got 0"),
        ({"RETRY_DELAYS_MS": [1000, 3600001]}, "core.RETRY_DELAYS_MS[1]: must be between 1 and 3600000"),
        ({"RETRY_DELAYS_MS": "1000,soon"}, "core.RETRY_DELAYS_MS[1]: must be an integer, got 'soon'"),
        ({"RETRY_DELAYS_MS": [1000, 1.5]}, "core.RETRY_DELAYS_MS[1]: must be an integer, got 1.5"),
        ({"RETRY_DELAYS_MS": list(range(1, 12))}, "core.RETRY_DELAYS_MS: at most 10 delays, got 11"),
        ({"RETRY_DELAYS_MS": {"first": 1000}}, "core.RETRY_DELAYS_MS: must be a list of integers"),
        ({"RETRY_QUEUE_MAX_LENGTH": 0}, "core.RETRY_QUEUE_MAX_LENGTH: must be between 1 and 10000000, got 0"),
        ({"RETRY_QUEUE_MAX_LENGTH": "lots"}, "core.RETRY_QUEUE_MAX_LENGTH: must be an integer, got 'lots'"),
    ],
)
def test_bad_values_are_named_before_any_load(value, problem):
    with pytest.raises(SpecError) as info:
        spec.apply_overrides({**GOOD, "core": value}, {})
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_a_series_names_its_own_bad_setting_and_every_problem_is_reported():
    raw = {
        **GOOD,
        "series": [
            {"label": "ok", "core": {"TRANSIENT_FAIL_RATE": 0.1}},
            {"label": "bad", "core": {"RETRY_DELAYS_MS": [4000, 1000], "PERMANENT_FAIL_RATE": 2}},
        ],
    }
    with pytest.raises(SpecError) as info:
        spec.apply_overrides(raw, {})
    assert [p.split(":")[0] for p in info.value.problems] == [
        "series[1].core.RETRY_DELAYS_MS",
        "series[1].core.PERMANENT_FAIL_RATE",
    ]


def test_switched_per_sweep_and_per_series():
    raw = {
        **GOOD,
        "modes": ["async"],
        "core": {"PERMANENT_FAIL_RATE": 0.001, "RETRY_DELAYS_MS": [1000, 4000]},
        "series": [
            {"label": "none", "core": {"TRANSIENT_FAIL_RATE": 0}},
            {"label": "no_retry", "core": {"TRANSIENT_FAIL_RATE": 0.1, "RETRY_DELAYS_MS": []}},
        ],
    }
    steps = expand_steps(spec.apply_overrides(raw, {}))
    assert [s.core for s in steps] == [
        {"PERMANENT_FAIL_RATE": "0.001", "RETRY_DELAYS_MS": "1000,4000", "TRANSIENT_FAIL_RATE": "0.0"},
        {"PERMANENT_FAIL_RATE": "0.001", "RETRY_DELAYS_MS": "", "TRANSIENT_FAIL_RATE": "0.1"},
    ]


def test_the_core_option_keeps_a_lists_commas():
    parse = option_text(OVERRIDES["core"]).parse
    assert parse("RETRY_DELAYS_MS=500,2000,TRANSIENT_FAIL_RATE=0.1") == {
        "RETRY_DELAYS_MS": "500,2000",
        "TRANSIENT_FAIL_RATE": "0.1",
    }
    assert parse("PREFETCH=100,MAX_IN_FLIGHT=50,") == {"PREFETCH": "100", "MAX_IN_FLIGHT": "50"}
    assert parse("RETRY_DELAYS_MS=") == {"RETRY_DELAYS_MS": ""}
    with pytest.raises(ValueError, match="settings are KEY=VALUE"):
        parse("1000,RETRY_DELAYS_MS=2000")
    overrides = parse_overrides({"core": "RETRY_DELAYS_MS=2000,1000"})
    with pytest.raises(SpecError) as info:
        spec.apply_overrides(GOOD, overrides, option_names=OPTION_FOR_KEY)
    assert info.value.problems == [
        "core (--core).RETRY_DELAYS_MS: must be strictly ascending (a backoff), got [2000, 1000]"
    ]


def test_the_settings_as_numbers():
    assert retry_delays_ms({}) == [1000, 4000, 16000]
    assert retry_delays_ms({"RETRY_DELAYS_MS": ""}) == []
    assert retry_delays_ms({"RETRY_DELAYS_MS": "500,2000"}) == [500, 2000]
    assert fail_rate({"TRANSIENT_FAIL_RATE": "0.1"}, "TRANSIENT_FAIL_RATE") == 0.1
    assert fail_rate({"TRANSIENT_FAIL_RATE": "x"}, "TRANSIENT_FAIL_RATE") == 0.0
    assert fail_rate({}, "PERMANENT_FAIL_RATE") == 0.0
    assert retry_queue_max_length({}) == 100000
    assert retry_queue_max_length({"RETRY_QUEUE_MAX_LENGTH": "5"}) == 5


# --------------------------------------------------------------------------------------------
# the failures spec


def test_the_failures_spec_runs_both_paths_with_each_failure_rate_in_under_25_minutes():
    s = spec.load("failures")
    steps = expand_steps(s)
    assert s.rates == [100, 200] and s.modes == ["sync", "async"] and s.repeat == 3
    assert s.max_vus >= 2 * max(s.rates) * s.work_ms / 1000  # sync is not capped by the client
    rates = {step.label: step.core["TRANSIENT_FAIL_RATE"] for step in steps}
    assert rates == {"transient_0": "0.0", "transient_1": "0.01", "transient_10": "0.1"}
    assert {step.core["PERMANENT_FAIL_RATE"] for step in steps} == {"0.001"}
    assert {step.core["RETRY_DELAYS_MS"] for step in steps} == {"1000,4000,16000"}
    assert len(steps) == 3 * 2 * 2 * 3
    # every point in both modes, 3 times
    points = {(st.label, st.mode, st.rate) for st in steps}
    assert len(points) == 12 and all(
        sum(1 for st in steps if (st.label, st.mode, st.rate) == p) == 3 for p in points
    )
    # load and cooldowns, plus a drain, a core restart and the step's own work for each step:
    # async steps with 10% transient failures drain ~25 s (a task failing 3 times waits 16 s)
    drains = sum(25 if st.core["TRANSIENT_FAIL_RATE"] == "0.1" else 8 for st in steps if st.mode == "async")
    budget_s = estimate_seconds(s) + drains + 5 * len(steps) + 3 * 3 * 3 + 20
    assert budget_s < 25 * 60, budget_s


def test_the_plan_shows_each_series_failure_rates():
    lines = plan_core(expand_steps(spec.load("failures")))
    assert [line.split(":")[0] for line in lines] == [
        "core [transient_0]",
        "core [transient_1]",
        "core [transient_10]",
    ]
    assert "TRANSIENT_FAIL_RATE=0.1" in lines[2] and "RETRY_DELAYS_MS=1000,4000,16000" in lines[2]
    assert plan_core(expand_steps(spec.load("quick"))) == []  # one set of settings: the spec line's
