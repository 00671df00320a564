"""`fab` with a mistyped task or option names the closest one, and exits 2, instead of invoke's
"No idea what 'chek' is!" (offload_lab/cli/fab_program.py, installed as .venv/bin/fab)."""

from __future__ import annotations

import pytest
from fab_command import NO_LAB, fab

from offload_lab.cli.fab_program import closest_options, explain_unknown

TASK_OPTIONS = {
    "check": ["--spec", "--rates", "--repeat", "--preflight", "--spec-only"],
    "report": ["--run", "--results-dir"],
    "sweep": ["--spec", "--rates", "--repeat", "--results-dir", "--run-id", "--duration"],
}
FAB_OPTIONS = ["--help", "-h", "--version", "-V", "--search-root", "-r"]


def test_an_unknown_task_names_the_closest_and_lists_them():
    said = explain_unknown("chek", None, TASK_OPTIONS, FAB_OPTIONS)
    assert said == "no task 'chek': did you mean `check`? (tasks: check, report, sweep)"
    assert (
        explain_unknown("xyz", None, TASK_OPTIONS, FAB_OPTIONS)
        == "no task 'xyz' (tasks: check, report, sweep)"
    )


def test_an_unknown_option_names_the_closest_of_its_task():
    said = explain_unknown("--rate", "sweep", TASK_OPTIONS, FAB_OPTIONS)
    assert said == "`fab sweep` has no option --rate: did you mean --rates? (`fab --help sweep` lists them)"
    assert "did you mean --duration?" in explain_unknown("--durtion", "sweep", TASK_OPTIONS, FAB_OPTIONS)
    # report has no --rates: no guess at all rather than a wrong one
    assert "did you mean" not in explain_unknown("--rates", "report", TASK_OPTIONS, FAB_OPTIONS)


def test_a_task_option_before_the_task_says_where_it_goes():
    said = explain_unknown("--rates", None, TASK_OPTIONS, FAB_OPTIONS)
    assert said == "--rates is an option of `fab check` or `fab sweep`: put it after the task name"
    said = explain_unknown("--rat", None, TASK_OPTIONS, FAB_OPTIONS)
    assert said == "fab has no option --rat: did you mean --rates, after the task name?"


def test_a_stray_value_after_a_task_suggests_commas():
    said = explain_unknown("100", "sweep", TASK_OPTIONS, FAB_OPTIONS)
    assert "'100' after `fab sweep`" in said and "--rates 50,100" in said


def test_short_options_map_to_the_long_ones_with_that_letter():
    assert closest_options("-r", TASK_OPTIONS["sweep"]) == [
        "--rates",
        "--repeat",
        "--results-dir",
        "--run-id",
    ]
    assert closest_options("--re", TASK_OPTIONS["sweep"]) == ["--repeat", "--results-dir"]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["chek"], "error: no task 'chek': did you mean `check`? (tasks: capacity, check, report, sweep)"),
        (
            ["sweep", "--rate", "50", *NO_LAB],
            "error: `fab sweep` has no option --rate: did you mean --rates? (`fab --help sweep` lists them)",
        ),
        (["--help", "chek"], "error: no task 'chek': did you mean `check`?"),
        (["sweep", *NO_LAB, "--rates"], "error: --rates needs a value (`fab --help sweep` shows its values)"),
        # a short option after a task would be fab's own (-r: --search-root) and the sweep would run
        # without the rates asked for
        (
            ["sweep", "-r", "50", *NO_LAB],
            "error: `fab sweep` has no option -r (its options are long ones): did you mean",
        ),
    ],
)
def test_the_fab_command_says_it(args, expected):
    r = fab(*args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(expected), r.stderr
    assert "No idea what" not in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""
