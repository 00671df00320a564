"""The repository's `fab` command: Fabric's own program, whose usage errors name the closest task
or option ("did you mean `check`?") instead of invoke's "No idea what 'chek' is!".

pyproject.toml installs it as `fab` ([project.scripts], `pip install -e .` in
scripts/install-deps.sh), in place of the `fab` that the fabric package installs."""

from __future__ import annotations

import ast
import difflib
import re

from fabric import Config, Executor
from fabric import __version__ as fabric_version
from fabric.main import Fab
from invoke.exceptions import Exit, ParseError

EXIT_USAGE = 2  # as offload_lab.cli.usage.UsageError
UNKNOWN_TOKEN_RE = re.compile(r"^No idea what (.+) is!$")  # invoke's parser and its --help
NO_VALUE_RE = re.compile(r"^Flag <Argument: ([\w-]+).*> needed value")
HELP_FLAGS = ("-h", "--help")


def _unquote(text: str) -> str:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text.strip("'\"")
    return value if isinstance(value, str) else text


def closest_options(token: str, options: list[str]) -> list[str]:
    """Long options a mistyped one probably meant: `-r` -> every option starting with r; `--r` or
    `--rate` -> those it begins; else the closest spelling (`--durtion` -> `--duration`)."""
    long_options = sorted(o for o in options if o.startswith("--"))
    if re.fullmatch(r"-[A-Za-z]", token):
        return [o for o in long_options if o[2] == token[1]]
    begun = [o for o in long_options if o.startswith(token)]
    return begun or difflib.get_close_matches(token, long_options, n=1)


def _one_of(options: list[str]) -> str:
    return options[0] if len(options) == 1 else ", ".join(options[:-1]) + f" or {options[-1]}"


def explain_unknown(
    token: str, task: str | None, task_options: dict[str, list[str]], fab_options: list[str]
) -> str:
    """What to say about a token neither a task nor an option where it stands.

    `task`: the task it followed (None: before any task); `task_options`: every task's options."""
    tasks = sorted(task_options)
    if not token.startswith("-"):
        close = difflib.get_close_matches(token, tasks, n=1)
        if close:
            return f"no task {token!r}: did you mean `{close[0]}`? (tasks: {', '.join(tasks)})"
        if task is not None:
            return (
                f"{token!r} after `fab {task}` is neither one of its options nor a task "
                "(a value of several items takes commas, no spaces: --rates 50,100)"
            )
        return f"no task {token!r} (tasks: {', '.join(tasks)})"
    if task is None:
        owners = [name for name in tasks if token in task_options[name]]
        if owners:
            commands = _one_of([f"`fab {t}`" for t in owners])
            return f"{token} is an option of {commands}: put it after the task name"
        of_tasks = sorted({o for name in tasks for o in task_options[name]} - set(fab_options))
        close = closest_options(token, fab_options + of_tasks)
        if close and set(close) <= set(of_tasks):
            return f"fab has no option {token}: did you mean {_one_of(close)}, after the task name?"
        guess = f": did you mean {_one_of(close)}?" if close else ""
        return f"fab has no option {token}{guess} (`fab --help` lists them)"
    close = closest_options(token, task_options[task])
    guess = f": did you mean {_one_of(close)}?" if close else ""
    return f"`fab {task}` has no option {token}{guess} (`fab --help {task}` lists them)"


class OffloadFab(Fab):
    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as exc:
            raise Exit(self._usage_error(exc), code=EXIT_USAGE) from None
        self._reject_short_options_after_a_task()

    def parse_cleanup(self) -> None:
        try:
            super().parse_cleanup()
        except ParseError as exc:  # `fab --help chek`
            raise Exit(self._usage_error(exc), code=EXIT_USAGE) from None

    def _task_options(self) -> dict[str, list[str]]:
        contexts = self._make_parser().contexts
        return {name: [str(f) for f in contexts[name].flags] for name in self.collection.task_names}

    def _usage_error(self, exc: ParseError) -> str:
        task = exc.context.name if exc.context is not None else None
        no_value = NO_VALUE_RE.match(str(exc))
        if no_value:
            where = f" (`fab --help {task}` shows its values)" if task else ""
            return f"error: --{no_value.group(1)} needs a value{where}"
        match = UNKNOWN_TOKEN_RE.match(str(exc))
        if not match:
            return f"error: {exc}"
        fab_options = [str(f) for f in self.initial_context.flags]
        return "error: " + explain_unknown(_unquote(match.group(1)), task, self._task_options(), fab_options)

    def _reject_short_options_after_a_task(self) -> None:
        """The tasks have long options only, and invoke takes a short one after a task for fab's own:
        `fab sweep -r 50` would run the spec's rates with -r as --search-root. Say so instead."""
        task_options = self._task_options()
        task = None
        for token in self.core.unparsed:
            if token in task_options:
                task = token
            elif task and re.fullmatch(r"-[A-Za-z].*", token) and token not in HELP_FLAGS:
                letter = token[:2]
                close = closest_options(letter, task_options[task])
                guess = f": did you mean {_one_of(close)}?" if close else ""
                raise Exit(
                    f"error: `fab {task}` has no option {letter} (its options are long ones){guess}",
                    code=EXIT_USAGE,
                )


program = OffloadFab(name="Fabric", version=fabric_version, executor_class=Executor, config_class=Config)
