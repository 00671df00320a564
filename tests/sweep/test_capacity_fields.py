"""`fab capacity`'s defaults are stated once, in offload_lab/plan/capacity_fields.py: the options, the
suite keys and the SLO take them from there, and no other place (the fabfile, the docs, the
README, a suite's comments) states another. A key added there is a suite key, and with an option
a `fab capacity` option whose value reaches the search through fab's own parsing."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from fab_command import task_options

import fabfile
from offload_lab.capacity import search as capacity
from offload_lab.capacity import suite as capacity_suite
from offload_lab.capacity.probe import Slo
from offload_lab.cli import task_help
from offload_lab.paths import REPO_ROOT
from offload_lab.plan import capacity_fields, overrides
from offload_lab.plan.capacity_fields import FIELDS
from offload_lab.plan.spec_fields import REQUIRED, SpecField

NUMBERS = [f for f in FIELDS if f.type in ("int", "number")]
SEARCH_NUMBERS = [f for f in NUMBERS if f.option]
OPTIONS = [f for f in FIELDS if f.option]


def _ids(f: SpecField) -> str:
    return f.key


def test_the_command_and_the_suite_take_the_tables_defaults():
    assert {f.option: f.default for f in SEARCH_NUMBERS} == capacity.DEFAULTS
    assert {f.key: f.default for f in SEARCH_NUMBERS} == capacity_suite.SUITE_DEFAULTS
    by_key = capacity_fields.BY_KEY
    assert Slo() == Slo(by_key["slo_p95_ms"].default, by_key["max_error_pct"].default)

    p = capacity.plan({"mode": "async"})
    assert (p.slo, p.start, p.max_rate, p.spec.duration_s, p.spec.work_ms, p.boundary_repeats) == (
        Slo(),
        by_key["start"].default,
        by_key["max_rate"].default,
        by_key["duration_s"].default,
        by_key["work_ms"].default,
        by_key["boundary_repeats"].default,
    )
    suite = capacity_suite.validate({"name": "s", "subjects": [{"name": "a", "mode": "async"}]})
    subject = suite.subjects[0].plan
    assert suite.slo == p.slo and dataclasses.replace(subject.spec, name=p.spec.name) == p.spec
    assert (subject.start, subject.max_rate, subject.boundary_repeats) == (
        p.start,
        p.max_rate,
        p.boundary_repeats,
    )


def test_suite_and_subject_keys_are_the_tables():
    assert tuple(f.key for f in FIELDS if "suite" in f.where) == capacity_suite.SUITE_KEYS
    assert tuple(f.key for f in FIELDS if "subject" in f.where) == capacity_suite.SUBJECT_KEYS
    with pytest.raises(capacity.SpecError) as info:
        capacity_suite.validate(
            {"name": "s", "colour": 1, "subjects": [{"name": "a", "mode": "async", "slo_p95_ms": 5}]}
        )
    assert f"colour: unknown key (known: {', '.join(capacity_suite.SUITE_KEYS)})" in info.value.problems
    assert any(p.startswith("subjects[0] (a).slo_p95_ms: unknown key") for p in info.value.problems)


@pytest.mark.parametrize("f", [f for f in NUMBERS if "suite" in f.where], ids=_ids)
def test_a_suite_number_is_checked_against_the_tables_range(f: SpecField):
    lo, hi = f.range
    for value in (lo - 1, hi + 1):
        with pytest.raises(capacity.SpecError) as info:
            capacity_suite.validate({"name": "s", f.key: value, "subjects": [{"name": "a", "mode": "sync"}]})
        assert any(p.startswith(f"{f.key}: must be between") for p in info.value.problems), info.value


@pytest.mark.parametrize("f", SEARCH_NUMBERS, ids=_ids)
def test_an_option_is_checked_against_the_tables_range(f: SpecField):
    lo, hi = f.range
    with pytest.raises(capacity.SpecError) as info:
        capacity.plan({"mode": "sync", f.option: str(hi + 1)})
    assert f"{overrides.flag(f.option)}: must be between {lo} and {hi}, got {hi + 1}" in info.value.problems


# -------------------------------------------------------------------------------- the options


def test_the_fab_task_offers_every_option_of_the_table_with_its_default_in_the_help():
    arguments = {a.name for a in fabfile.capacity.get_arguments()}
    for f in OPTIONS:
        assert f.option in arguments, f"fab capacity has no --{f.option}"
        help_text = task_help.CAPACITY_HELP[f.option]
        assert help_text.startswith(f.help)
        if f.default is REQUIRED:
            assert help_text.endswith("default: none, required without --suite)")
        elif f in SEARCH_NUMBERS:
            assert help_text.endswith(f"default: {f.default})")
    assert set(capacity_fields.SEARCH_OPTIONS) == {f.option for f in OPTIONS}


@pytest.mark.parametrize("f", OPTIONS, ids=_ids)
def test_each_option_reaches_the_search_through_fabs_parsing(f: SpecField, monkeypatch):
    mode = [] if f.option == "mode" else ["--mode", "sync"]
    argv = [*mode, overrides.flag(f.option), f.option_example]
    options = task_options(fabfile.capacity, argv, monkeypatch)
    p = capacity.plan(options)
    value = overrides.option_text(f).parse(f.option_example)
    got = {
        "mode": p.mode,
        "slo_p95_ms": p.slo.p95_ms,
        "max_error_pct": p.slo.max_error_pct,
        "duration_s": p.spec.duration_s,
        "start": p.start,
        "max_rate": p.max_rate,
        "boundary_repeats": p.boundary_repeats,
        "gateway": p.spec.gateway,
        "core": p.spec.core,
    }[f.key]
    assert got == value and (f.default is REQUIRED or got != f.default), (f.key, got)


# -------------------------------------------------------------------------------- stated elsewhere

# where a person reads about `fab capacity`; the generated tables are held by test_spec_fields.py
SCANNED = [
    REPO_ROOT / "README.md",
    REPO_ROOT / "fabfile.py",
    *sorted((REPO_ROOT / "docs").glob("*.md")),
    *sorted((REPO_ROOT / "k6").glob("*/README.md")),
    *sorted((REPO_ROOT / "k6" / "capacity").glob("*.yml")),
    *sorted((REPO_ROOT / "offload_lab").rglob("*.py")),
]
NUMBER = r"`?(?P<value>\d[\d,]*(?:\.\d+)?)"


def _statements(f: SpecField) -> list[re.Pattern]:
    """How a text states a search setting's default: `--start` (default 50/s), `start` ...
    default: 50, [--start 50] in a usage line; and the default SLO's own phrase."""
    names = [re.escape(overrides.flag(f.option)), rf"\b{re.escape(f.key)}\b"]
    out = [re.compile(rf"(?:{'|'.join(names)})`?[^.;\n|]{{0,40}}?\bdefault:?\s+{NUMBER}")]
    out.append(re.compile(rf"\[{names[0]}[ =]{NUMBER}\]"))
    if f.key == "slo_p95_ms":
        out.append(re.compile(rf"default SLO: p95 <= {NUMBER} ms"))
    if f.key == "max_error_pct":
        out.append(re.compile(rf"default SLO: p95 <= [\d.]+ ms, errors <= {NUMBER} %"))
    return out


def stated_defaults(f: SpecField, paths: list[Path]) -> list[tuple[str, float]]:
    found = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for pattern in _statements(f):
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                found.append((f"{path}:{line}", float(m["value"].replace(",", ""))))
    return found


def test_the_scan_sees_each_way_of_stating_a_default(tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text(
        "probes from `--start` (default 60/s), `max_rate` (default: 4,000), [--duration 7]; an\n"
        "example --start 100 states nothing. # the default SLO: p95 <= 9 ms, errors <= 2 %\n"
    )
    by_key = capacity_fields.BY_KEY
    seen = {k: [v for _, v in stated_defaults(by_key[k], [doc])] for k in ("start", "max_rate", "duration_s")}
    assert seen == {"start": [60.0], "max_rate": [4000.0], "duration_s": [7.0]}
    assert [v for _, v in stated_defaults(by_key["slo_p95_ms"], [doc])] == [9.0]
    assert [v for _, v in stated_defaults(by_key["max_error_pct"], [doc])] == [2.0]


@pytest.mark.parametrize("f", SEARCH_NUMBERS, ids=_ids)
def test_no_other_place_states_another_default(f: SpecField):
    found = stated_defaults(f, SCANNED)
    assert found, f"no place states {f.key}'s default: the scan no longer sees the docs' statements"
    wrong = [(where, value) for where, value in found if value != float(f.default)]
    assert not wrong, f"{f.key} defaults to {f.default} (offload_lab/plan/capacity_fields.py), not: {wrong}"
