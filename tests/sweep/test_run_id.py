"""A run whose overrides changed what ran says so in its run id: `...-quick-rates50_100-repeat2`,
bounded, and made of the characters a run id may have."""

from __future__ import annotations

import datetime as dt

import pytest

from offload_lab.cli import commands, run_start
from offload_lab.cli.usage import UsageError
from offload_lab.plan.spec import NAME_RE
from offload_lab.run.results import MAX_RUN_ID, make_run_id

NOW = dt.datetime(2026, 1, 2, 3, 4, 5)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({}, "20260102-030405-quick"),
        ({"rates": [50, 100], "repeat": 2}, "20260102-030405-quick-rates50_100-repeat2"),
        ({"rates": {"from": 50, "to": 400, "step": 50}}, "20260102-030405-quick-rates50to400by50"),
        ({"modes": ["async"], "cooldown_s": 2.5}, "20260102-030405-quick-modes_async-cooldown2.5"),
        # settings are named, not spelled out (run.json has them)
        ({"gateway": {"PUBLISHER": "pika_shared"}}, "20260102-030405-quick-gateway"),
        # too long with every value: the longest values go first
        (
            {
                "rates": {"from": 50, "to": 400, "step": 50},
                "duration_s": 10,
                "max_vus": 200,
                "pre_allocated_vus": 50,
            },
            "20260102-030405-quick-rates-duration10-maxvus200-prevus50",
        ),
    ],
)
def test_the_run_id_names_what_the_command_line_changed(overrides, expected):
    assert make_run_id("quick", overrides, NOW) == expected


def test_the_run_id_stays_a_valid_bounded_name():
    many = {
        "rates": list(range(50, 450, 50)),
        "duration_s": 10,
        "max_vus": 200,
        "pre_allocated_vus": 50,
        "work_ms": 500,
        "drain_timeout_s": 60,
        "cooldown_s": 1,
        "repeat": 3,
        "modes": ["sync"],
    }
    assert make_run_id("publishers", many, NOW) == "20260102-030405-publishers-overrides"
    long_name = make_run_id("x" * 64, {"repeat": 2}, NOW)
    assert long_name.endswith("-repeat2") and len(long_name) == MAX_RUN_ID
    for run_id in (long_name, make_run_id("quick", {"gateway": {"A": "b c/d"}, "order": "by_mode"}, NOW)):
        assert NAME_RE.match(run_id), run_id


def test_only_overrides_that_change_the_spec_count():
    spec, overrides, _ = commands.plan_spec("quick", {"duration": "10", "rates": "50,100", "repeat": "2"})
    # quick already runs 10 s steps
    assert commands.changed_overrides("quick", spec, overrides) == {"rates": [50, 100], "repeat": 2}


def test_fab_sweep_names_its_run_with_the_overrides(monkeypatch, inventory_dir, tmp_path):
    seen = []

    class StopAtPreflight:
        def __init__(self, lab, run_id, password):
            seen.append(run_id)

        def preflight(self):
            return ["stop here"]

        def close(self):
            pass

    monkeypatch.setattr(run_start, "LabConnections", StopAtPreflight)
    with pytest.raises(UsageError, match="stop here"):
        commands.sweep("quick", {"rates": "50,100", "repeat": "2"}, str(inventory_dir), str(tmp_path))
    assert seen[0].endswith("-quick-rates50_100-repeat2") and seen[0][:15].replace("-", "").isdigit()
