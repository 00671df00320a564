"""The run folder (docs/result-format.md): results/<run-id>/run.json and steps/<NN>-<mode>-<rate>.json.

Every write goes to a temporary file first and is renamed into place, so an interrupted sweep
never leaves a half-written JSON file."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any

from .paths import RESULTS_DIR

SCHEMA_VERSION = 1
RUN_ID_RE = re.compile(r"^\d{8}-\d{6}-")


def utcnow() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_run_id(spec_name: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%d-%H%M%S}-{spec_name}"


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class RunFolder:
    def __init__(self, results_dir: Path, run_id: str):
        self.path = Path(results_dir) / run_id
        self.run_id = run_id
        self.run: dict[str, Any] = {}

    @property
    def steps_dir(self) -> Path:
        return self.path / "steps"

    def create(self, run: dict[str, Any]) -> None:
        if self.path.exists() and any(self.path.iterdir()):
            raise FileExistsError(f"results folder {self.path} already exists and is not empty")
        self.steps_dir.mkdir(parents=True, exist_ok=True)
        self.run = {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            **run,
            "started_at": run.get("started_at") or utcnow(),
            "ended_at": None,
            "status": "running",
            "steps": [],
        }
        self.save()

    def save(self) -> None:
        write_json(self.path / "run.json", self.run)

    def add_step(self, filename: str, data: dict[str, Any]) -> Path:
        path = self.steps_dir / filename
        write_json(path, {"schema_version": SCHEMA_VERSION, **data})
        self.run["steps"].append(filename)
        self.save()
        return path

    def finish(self, status: str, **fields: Any) -> None:
        self.run.update(fields)
        self.run["status"] = status
        self.run["ended_at"] = utcnow()
        self.save()


def newest_run(results_dir: Path = RESULTS_DIR) -> Path | None:
    """The newest run folder (by run-id, which starts with a UTC timestamp) holding a run.json."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return None
    runs = [p for p in results_dir.iterdir() if p.is_dir() and (p / "run.json").is_file()]
    if not runs:
        return None
    stamped = [p for p in runs if RUN_ID_RE.match(p.name)]
    pool = stamped or runs
    return max(pool, key=lambda p: (p.name if stamped else "", p.stat().st_mtime))
