"""The run folder (docs/result-format.md): results/<run-id>/ with its run.json and step files,
written through offload_lab.records."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..paths import RESULTS_DIR
from ..plan.overrides import OPTION_FOR_KEY
from ..records import RUN_FILE, STEPS_DIR, RunRecord, StepRecord, write_run, write_step

RUN_ID_RE = re.compile(r"^\d{8}-\d{6}-")
MAX_RUN_ID = 64  # as long as a name may be (offload_lab.plan.spec.NAME_RE)
MAX_OVERRIDES_SUFFIX = 40
MAX_VALUE_IN_RUN_ID = 12  # longer values are left to run.json: only the option is named
OVERRIDES_WORD = "overrides"


def utcnow() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_run_id(
    spec_name: str, overrides: dict[str, Any] | None = None, now: dt.datetime | None = None
) -> str:
    """`YYYYmmdd-HHMMSS-<spec>`, plus what the command line changed: `-rates50_100-repeat2`.

    `overrides` maps spec keys to the values that changed the spec (run.json has them all)."""
    now = now or dt.datetime.now(dt.UTC)
    stem = f"{now:%Y%m%d-%H%M%S}-{spec_name}"
    suffix = overrides_suffix(overrides or {}, max(MAX_RUN_ID - len(stem), len(OVERRIDES_WORD) + 1))
    return stem[: MAX_RUN_ID - len(suffix)] + suffix


def overrides_suffix(overrides: dict[str, Any], room: int) -> str:
    """`-rates50_100-modes_async-gateway`: each overridden option, with its value while that fits
    (longest values go first); `-overrides` when the options alone do not fit."""
    if not overrides:
        return ""
    # named as typed on the command line (--max-vus: maxvus), not by spec key (max_vus)
    names = [OPTION_FOR_KEY.get(key, key).strip("-").replace("-", "").replace("_", "") for key in overrides]
    values = [_value_text(v) for v in overrides.values()]
    values = [v if len(v) <= MAX_VALUE_IN_RUN_ID else "" for v in values]
    limit = min(room, MAX_OVERRIDES_SUFFIX)

    def suffix() -> str:
        return "".join(
            f"-{n}" + ("" if not v else v if v[0].isdigit() else f"_{v}")
            for n, v in zip(names, values, strict=True)
        )

    while len(suffix()) > limit and any(values):
        longest = max(range(len(values)), key=lambda i: len(values[i]))
        values[longest] = ""
    if len(suffix()) <= limit:
        return suffix()
    return f"-{OVERRIDES_WORD}"


def _value_text(value: Any) -> str:
    """A value as letters, digits, `_` and `.` only ('' for settings: too long to name)."""
    if isinstance(value, dict) and set(value) == {"from", "to", "step"}:
        text = f"{value['from']}to{value['to']}by{value['step']}"
    elif isinstance(value, list | tuple):
        text = "_".join(str(v) for v in value)
    elif isinstance(value, dict):
        return ""
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9_.]", "", text)


GIT_DIFF_FILE = "git.diff"  # in a run folder: what a dirty tree differed from its commit by


class RunFolder:
    def __init__(self, results_dir: Path, run_id: str):
        self.path = Path(results_dir) / run_id
        self.run_id = run_id
        self.run = RunRecord(run_id=run_id)

    @property
    def steps_dir(self) -> Path:
        return self.path / STEPS_DIR

    def create(self, run: RunRecord, git_diff: str | None = None) -> None:
        """run: the run's record as the command built it; the folder gives it its run id, start,
        status and steps. `git_diff` (what a dirty tree differed by) goes to GIT_DIFF_FILE, which
        run.json then names."""
        if self.path.exists() and any(self.path.iterdir()):
            raise FileExistsError(f"results folder {self.path} already exists and is not empty")
        self.steps_dir.mkdir(parents=True, exist_ok=True)
        if git_diff:
            (self.path / GIT_DIFF_FILE).write_text(git_diff)
        self.run = replace(
            run,
            run_id=self.run_id,
            git_diff_file=GIT_DIFF_FILE if git_diff else None,
            started_at=run.started_at or utcnow(),
            ended_at=None,
            status="running",
            steps=[],
        )
        self.save()

    def save(self) -> None:
        write_run(self.path, self.run)

    def add_step(self, record: StepRecord) -> Path:
        path = write_step(self.path, record)
        self.run.steps.append(path.name)
        self.save()
        return path

    def finish(self, status: str, **fields: Any) -> None:
        """`fields`: the RunRecord's fields an ending sets (timing, error, ...)."""
        self.run = replace(self.run, **fields, status=status, ended_at=utcnow())
        self.save()


def newest_run(results_dir: Path = RESULTS_DIR) -> Path | None:
    """The newest run folder (by run-id, which starts with a UTC timestamp) holding a run.json."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return None
    runs = [p for p in results_dir.iterdir() if p.is_dir() and (p / RUN_FILE).is_file()]
    if not runs:
        return None
    stamped = [p for p in runs if RUN_ID_RE.match(p.name)]
    pool = stamped or runs
    return max(pool, key=lambda p: (p.name if stamped else "", p.stat().st_mtime))
