"""`fab --help TASK`: every option with its type and default, from one table
(offload_lab/cli/task_help.py); long options only, so a letter never means two things."""

from __future__ import annotations

import inspect
import re

from fab_command import fab

import fabfile
from offload_lab.cli import task_help
from offload_lab.cli.task_help import CHECK_HELP, REPORT_HELP, SWEEP_HELP
from offload_lab.plan import overrides

TASKS = {"sweep": SWEEP_HELP, "check": CHECK_HELP, "report": REPORT_HELP}


def test_every_task_option_has_its_help_from_task_help():
    for name, help_table in TASKS.items():
        body = getattr(fabfile, name).body
        options = [p for p in inspect.signature(body).parameters if p != "c"]
        assert sorted(options) == sorted(help_table), name
        for option in options:
            assert re.search(r"\((.+; )?default", help_table[option]) or help_table[option].endswith(
                "(flag)"
            ), f"{name} --{option}: no type/default in {help_table[option]!r}"


def test_overrides_are_the_options_that_change_the_spec():
    assert set(overrides.OVERRIDES) <= set(task_help.SWEEP_HELP)
    assert set(overrides.OVERRIDES) <= set(task_help.CHECK_HELP)
    assert overrides.OPTION_FOR_KEY["duration_s"] == "--duration"
    assert (
        task_help.OVERRIDE_HELP["duration"]
        == "seconds of load per step (integer s; e.g. 10; default: the spec's)"
    )


def test_no_task_has_short_options():
    for name in TASKS:
        task = getattr(fabfile, name)
        for argument in task.get_arguments():
            assert all(len(n) > 1 for n in argument.names), f"{name}: {argument.names}"


def test_help_of_sweep_shows_types_defaults_where_unset_options_come_from_and_an_example():
    for args in (["--help", "sweep"], ["sweep", "--help"]):
        r = fab(*args)
        assert r.returncode == 0, r.stderr
        out = r.stdout
        assert "Options left unset take the spec's value" in out
        assert "Example: fab sweep --spec quick --rates 50,100 --duration 10 --repeat 2" in out
        flat = " ".join(out.split())  # help is wrapped to the terminal
        assert "--duration=STRING seconds of load per step (integer s; e.g. 10; default: the spec's)" in flat
        assert "(name or path; default: quick)" in flat
        assert not re.search(r"^\s+-[a-z] ", out, re.MULTILINE), "a short option is listed"
