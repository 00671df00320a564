"""Runs the venv's `fab`, as `make` and the README do, for the tests of its messages and help;
or parses a task's command line in-process, as fab does, for the tests of its options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from invoke.parser import Parser, ParserContext

from offload_lab.cli import capacity_commands, commands

REPO = Path(__file__).resolve().parents[2]
FAB = Path(sys.executable).parent / "fab"
NO_LAB = ["--inventory", "/nonexistent/inventory"]  # should a check break: fail, never reach a lab


def fab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(FAB), *args], cwd=REPO, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def task_options(task, argv: list[str], monkeypatch) -> dict:
    """`fab TASK ARGV` parsed by invoke's parser as fab parses it and the task's body run, with
    the command of the same name replaced (offload_lab.cli.commands, capacity_commands); returns
    the options the body hands it."""
    context = ParserContext(name=task.name, args=task.get_arguments())
    parsed = Parser(contexts=[context]).parse_argv([task.name, *argv])
    seen = {}

    def record(*args, **kwargs):
        seen["options"] = next(a for a in args if isinstance(a, dict))
        return 0

    monkeypatch.setattr(capacity_commands if task.name == "capacity" else commands, task.name, record)
    task.body(None, **parsed[0].as_kwargs)
    return seen["options"]
