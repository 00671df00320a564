"""The sweep spec's field table (offload_lab/plan/spec_fields.py) is the one list of its keys. Adding a
key there is enough: every test here iterates the table, so a key the spec parser, the fab
options, the k6 environment, k6/loadtest.js or the docs do not follow fails here, named:
- the spec parser accepts each key and fills in its default (SweepSpec, SeriesSpec), refuses
  values outside its range or choices naming the key, and asks for each required key;
- each key with an option is a --option of `fab sweep` and `fab check`, and its example reaches
  the spec through fab's own parsing;
- each key with a k6 variable reaches k6's environment, k6/loadtest.js reads every such variable
  (and no other but the run's), and the script's own defaults are the table's;
- k6/sweeps/README.md's tables are what offload_lab/cli/spec_docs.py generates from the table.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fab_command import task_options

import fabfile
from offload_lab.cli import commands, spec_docs, task_help
from offload_lab.loadgen import k6 as k6_mod
from offload_lab.paths import K6_SCRIPT
from offload_lab.plan import capacity_fields, spec, spec_fields
from offload_lab.plan import overrides as override_options
from offload_lab.plan.spec import SeriesSpec, SpecError, SweepSpec
from offload_lab.plan.spec_fields import FIELDS, REQUIRED, TYPES, SameAs, SpecField
from offload_lab.plan.steps import PlannedStep, expand_steps

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
WHERE = {"sweep", "series", "suite", "subject"}
# the Python type of each type's default
DEFAULT_TYPES = {
    "name": str,
    "text": str,
    "int": int,
    "number": int | float,
    "choice": str,
    "modes": list,
    "gateway": dict,
    "core": dict,
    "instruments": dict,
    "series": type(None),
    "faults": tuple,
}
# what k6/loadtest.js reads that the sweep never sets: a person running k6 by hand may
# (tests/sweep/test_k6_sync_retries.py)
K6_BY_HAND = {"SYNC_RETRIES", "SYNC_RETRY_BACKOFF_MS"}
K6 = shutil.which("k6", path=str(Path(sys.executable).parent)) or shutil.which("k6")

SWEEP_FIELDS = [f for f in FIELDS if "sweep" in f.where and f.type != "series"]
# keys whose k6 variable carries the key's own value (not one of its values: a step's mode, rate)
K6_OWN = [f for f in FIELDS if f.k6 and f.k6.step_attribute == f.key]
SERIES_FIELDS = [f for f in FIELDS if "series" in f.where]
BOUNDED = [f for f in FIELDS if f.type in ("int", "number")]


def _ids(f: SpecField) -> str:
    return f.key


def valid_value(f: SpecField):
    """A value each type takes, for the keys a spec must set."""
    lo = f.range[0] if f.range else None
    return {"name": "t", "text": "x", "rates": [lo], "int": lo, "number": lo}[f.type]


def minimal_spec() -> dict:
    """A spec with the required keys only, each set to a valid value."""
    return {f.key: valid_value(f) for f in SWEEP_FIELDS if f.default is REQUIRED}


def problems_of(raw: dict, overrides: dict | None = None) -> list[str]:
    try:
        spec.apply_overrides(raw, overrides or {})
    except SpecError as exc:
        return exc.problems
    return []


# -------------------------------------------------------------------------------- the table


def test_keys_are_unique_and_sweep_and_series_keys_partition_the_table():
    keys = [f.key for f in FIELDS]
    assert len(keys) == len(set(keys)), keys
    assert set(spec_fields.BY_KEY) == set(keys)
    assert set(spec_fields.SWEEP_KEYS) | set(spec_fields.SERIES_KEYS) == set(keys)


@pytest.mark.parametrize("f", FIELDS + capacity_fields.FIELDS, ids=_ids)
def test_each_field_is_well_formed(f: SpecField):
    assert f.type in TYPES
    assert f.help.strip() and "\n" not in f.help and "|" not in f.help, "one line, no table pipe"
    assert f.where and set(f.where) <= WHERE
    assert (f.range is not None) == (f.type in ("int", "number", "rates")), "bounds belong to numbers"
    if f.range is not None:
        assert f.range[0] < f.range[1]
    assert bool(f.choices) == (f.type in ("choice", "modes")), "choices belong to choices"
    assert bool(f.option) == bool(f.option_example), "an option needs an example (its help, the tests)"
    if f.default is REQUIRED or f.type in ("subjects",):
        return
    if isinstance(f.default, SameAs):  # the spec checks keys in the table's order
        keys = [g.key for g in FIELDS]
        assert keys.index(f.default.key) < keys.index(f.key), "SameAs: a key before this one"
        assert spec_fields.BY_KEY[f.default.key].type == f.type
        return
    assert isinstance(f.default, DEFAULT_TYPES[f.type]) and not isinstance(f.default, bool), f.default
    if f.range is not None:
        assert f.range[0] <= f.default <= f.range[1]
    if f.type == "choice":
        assert f.default in f.choices
    if f.type == "modes":
        assert set(f.default) <= set(f.choices)


def test_k6_variables_are_unique_environment_names():
    names = [v.name for v in spec_fields.K6_VARIABLES]
    assert len(names) == len(set(names)) and all(ENV_NAME.match(n) for n in names), names
    planned = {f.name for f in dataclasses.fields(PlannedStep)}
    assert {v.step_attribute for v in spec_fields.K6_VARIABLES} <= planned, "a PlannedStep attribute"


# -------------------------------------------------------------------------------- the spec


def test_the_spec_records_have_one_attribute_per_key():
    assert {f.name for f in dataclasses.fields(SweepSpec)} == set(spec_fields.SWEEP_KEYS), (
        "SweepSpec must have one attribute per sweep key of spec_fields.FIELDS"
    )
    assert {f.name for f in dataclasses.fields(SeriesSpec)} == set(spec_fields.SERIES_KEYS), (
        "SeriesSpec must have one attribute per series key of spec_fields.FIELDS"
    )


def _default_in(f: SpecField, checked: dict):
    return checked[f.default.key] if isinstance(f.default, SameAs) else f.default


@pytest.mark.parametrize("f", [f for f in SWEEP_FIELDS if f.default is not REQUIRED], ids=_ids)
def test_a_spec_without_the_key_gets_its_default(f: SpecField):
    loaded = spec.apply_overrides(minimal_spec(), {})
    assert getattr(loaded, f.key) == _default_in(f, dataclasses.asdict(loaded))


@pytest.mark.parametrize("f", [f for f in SERIES_FIELDS if f.default is not REQUIRED], ids=_ids)
def test_a_series_without_the_key_gets_its_default(f: SpecField):
    series = {g.key: valid_value(g) for g in SERIES_FIELDS if g.default is REQUIRED}
    loaded = spec.apply_overrides({**minimal_spec(), "series": [series]}, {})
    value = getattr(loaded.series[0], f.key)
    # a series' modes are the spec's, its other keys over the spec's: both the table's default
    expected = loaded.modes if f.key == "modes" else f.default
    assert value == expected


@pytest.mark.parametrize("f", [f for f in SWEEP_FIELDS if f.default is REQUIRED], ids=_ids)
def test_each_required_key_is_asked_for(f: SpecField):
    raw = {k: v for k, v in minimal_spec().items() if k != f.key}
    assert f"{f.key}: required" in problems_of(raw)


def test_unknown_keys_are_named_with_the_known_ones():
    found = problems_of({**minimal_spec(), "colour": 1, "series": [{"label": "a", "colour": 2}]})
    assert f"colour: unknown key (known: {', '.join(spec_fields.SWEEP_KEYS)})" in found
    assert f"series[0].colour: unknown key (known: {', '.join(spec_fields.SERIES_KEYS)})" in found


def _out_of_range(f: SpecField) -> list:
    lo, hi = f.range
    below = lo - 1 if f.type == "int" else lo - 0.05
    return [below, hi + 1]


@pytest.mark.parametrize("f", [f for f in BOUNDED if "sweep" in f.where], ids=_ids)
def test_a_number_is_checked_against_the_tables_range(f: SpecField):
    for value in f.range:
        found = problems_of({**minimal_spec(), f.key: value})
        assert not [p for p in found if p.startswith(f"{f.key}: must be between")], (value, found)
    for value in _out_of_range(f):
        found = problems_of({**minimal_spec(), f.key: value})
        lo, hi = f.range
        assert f"{f.key}: must be between {lo} and {hi}, got {value}" in found, found


@pytest.mark.parametrize("f", [f for f in FIELDS if f.type == "choice"], ids=_ids)
def test_a_choice_is_checked_against_the_tables_choices(f: SpecField):
    for value in f.choices:
        assert not [p for p in problems_of({**minimal_spec(), f.key: value}) if p.startswith(f.key)]
    found = problems_of({**minimal_spec(), f.key: "nope"})
    assert f"{f.key}: must be one of {', '.join(f.choices)}, got 'nope'" in found


def test_a_series_key_is_named_by_its_path():
    series = [{"label": "a"}, {"label": "b", "core": {"RETRY_DELAYS_MS": "4000,1000"}, "modes": ["x"]}]
    found = problems_of({**minimal_spec(), "series": series})
    assert any(p.startswith("series[1].core.RETRY_DELAYS_MS: must be strictly ascending") for p in found)
    assert any(p.startswith("series[1].modes: unknown mode(s) ['x']") for p in found), found


def test_planned_steps_default_to_the_tables_defaults():
    defaults = {f.name: f.default for f in dataclasses.fields(PlannedStep)}
    for f in K6_OWN:
        if defaults[f.key] is not dataclasses.MISSING:
            assert defaults[f.key] == f.default, f"PlannedStep.{f.key}"


# -------------------------------------------------------------------------------- the options

OPTION_FIELDS = [f for f in FIELDS if f.option]


@pytest.mark.parametrize("task", ["sweep", "check"])
def test_each_option_of_the_table_is_a_task_option_with_its_help(task):
    arguments = {a.name for a in getattr(fabfile, task).get_arguments()}
    help_table = task_help.SWEEP_HELP if task == "sweep" else task_help.CHECK_HELP
    for f in OPTION_FIELDS:
        assert f.option in arguments, f"fab {task} has no --{f.option}"
        assert help_table[f.option].startswith(f.help) and f.option_example in help_table[f.option]
        assert override_options.OPTION_FOR_KEY[f.key] == override_options.flag(f.option)
    assert set(override_options.OVERRIDES) == {f.option for f in OPTION_FIELDS}


@pytest.mark.parametrize("f", OPTION_FIELDS, ids=_ids)
def test_each_option_reaches_the_spec_through_fabs_parsing(f: SpecField, tmp_path, monkeypatch):
    path = tmp_path / "t.yml"
    base = {**minimal_spec(), "rates": [75], "duration_s": 3, "max_vus": 300}
    path.write_text(yaml.safe_dump(base))
    argv = ["--spec", str(path), override_options.flag(f.option), f.option_example]
    options = task_options(fabfile.check, argv, monkeypatch)
    assert options == {f.option: f.option_example}
    loaded, overrides, _ = commands.plan_spec(str(path), options)
    expected = override_options.option_text(f).parse(f.option_example)
    assert overrides == {f.key: expected}
    before = getattr(spec.apply_overrides(base, {}), f.key)
    after = getattr(loaded, f.key)
    assert after != before, f"choose an option_example for {f.key} other than {before!r}"
    assert after == getattr(spec.apply_overrides(base, {f.key: expected}), f.key)


# -------------------------------------------------------------------------------- k6


def _step(**values) -> PlannedStep:
    loaded = spec.apply_overrides({**minimal_spec(), "rates": [7], "max_vus": 3, "duration_s": 1}, {})
    return dataclasses.replace(expand_steps(loaded)[0], **values)


def test_each_k6_variable_of_the_table_reaches_k6s_environment():
    step = _step(mode="sync", request_timeout_s=2.5)
    env = k6_mod.k6_env(step, "http://gw:8000", "/tmp/s.json")
    for variable in spec_fields.K6_VARIABLES:
        assert env[variable.name] == variable.text(getattr(step, variable.step_attribute)), variable.name
    assert (env["MODE"], env["RATE"], env["TIMEOUT"], env["DURATION"]) == ("sync", "7", "2.5s", "1s")


def _read_by_script() -> set[str]:
    text = K6_SCRIPT.read_text()
    # need(NAME) is the one reader of __ENV[...] by a computed name
    assert text.count("__ENV[") == 1 and "const value = __ENV[name];" in text
    return set(re.findall(r"__ENV\.([A-Z][A-Z0-9_]*)", text)) | set(
        re.findall(r"need\('([A-Z0-9_]+)'\)", text)
    )


def test_loadtest_js_reads_every_k6_variable_of_the_table_and_no_other():
    read = _read_by_script()
    table = {v.name for v in spec_fields.K6_VARIABLES}
    assert table <= read, f"in spec_fields.py but not read by k6/loadtest.js: {sorted(table - read)}"
    from_the_run = {k for k in k6_mod.k6_env(_step(), "u", "s") if not k.startswith("K6_")} - table
    unknown = read - table - from_the_run - K6_BY_HAND
    assert not unknown, f"read by k6/loadtest.js but neither a spec key's nor the run's: {sorted(unknown)}"


def _header_defaults() -> dict[str, str]:
    """The defaults k6/loadtest.js's header comment states: NAME -> the text after `(default`."""
    header = K6_SCRIPT.read_text().split("\nimport ", 1)[0]
    return dict(re.findall(r'^//   ([A-Z][A-Z0-9_]*) .*?\(default:? "?([A-Za-z0-9_.]+)', header, re.M))


@pytest.mark.parametrize("f", [f for f in K6_OWN if f.default is not REQUIRED], ids=_ids)
def test_loadtest_js_documents_the_tables_default(f: SpecField):
    stated = _header_defaults().get(f.k6.name)
    if isinstance(f.default, SameAs):
        expected = spec_fields.BY_KEY[f.default.key].k6.name
    else:
        expected = f.k6.text(f.default)
    assert stated == expected, f"k6/loadtest.js says {f.k6.name} defaults to {stated}, the table {expected}"


def _offload_block(env: dict[str, str], tmp_path: Path, name: str) -> dict:
    summary = tmp_path / f"{name}.json"
    r = subprocess.run(
        [K6, *k6_mod.k6_args(str(K6_SCRIPT))],
        env={**os.environ, **env, "SUMMARY_PATH": str(summary)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(summary.read_text())["offload"]


def test_loadtest_js_defaults_are_the_tables(http_target, tmp_path):
    """k6 run without the variables of the keys that have a default takes the same parameters
    as with the table's defaults given."""
    defaulted = [f.k6.name for f in K6_OWN if f.default is not REQUIRED]
    assert defaulted
    env = k6_mod.k6_env(_step(), http_target.base_url, "unused")
    given = _offload_block(env, tmp_path, "given")
    left_out = _offload_block({k: v for k, v in env.items() if k not in defaulted}, tmp_path, "left-out")
    assert left_out == given


# -------------------------------------------------------------------------------- the docs


@pytest.mark.parametrize("block", spec_docs.BLOCKS, ids=lambda b: b.name)
def test_the_docs_tables_are_the_tables(block):
    text = block.path.read_text(encoding="utf-8")
    assert block.begin in text and block.end in text, f"{block.path}: the markers of {block.name}"
    assert block.rewrite(text) == text, (
        f"{block.path.relative_to(spec_docs.REPO_ROOT)}, {block.name}, differs from the table: "
        "python -m offload_lab.cli.spec_docs"
    )


def test_every_key_and_option_has_its_row():
    keys = spec_docs.sweep_keys_table()
    options = spec_docs.sweep_options_table()
    for f in FIELDS:
        assert f"| `{f.key}` |" in keys and f.help in keys
        if f.option:
            assert f"| `{override_options.flag(f.option)}` | `{f.key}` |" in options
        if f.k6:
            assert f"`{f.k6.name}`" in keys
