"""Reading and writing the files: JSON written atomically, read back with what is wrong with it
said (RecordError), and each record under its own name in its folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .convert import RecordError
from .names import CAPACITY_FILE, RUN_FILE, STEPS_DIR
from .schema import RunRecord, StepRecord, SuiteRecord


def write_json(path: Path, data: Any) -> None:
    """Write to a temporary file first and rename it into place, so that an interrupted run
    never leaves a half-written JSON file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """A JSON file; RecordError saying what is wrong with it (unreadable, empty, corrupt)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RecordError("not UTF-8 text") from None
    except OSError as exc:
        raise RecordError(f"cannot be read ({exc.strerror or exc})") from None
    if not text.strip():
        raise RecordError("empty file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(
            f"not valid JSON, truncated or corrupt ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno}, file is {len(text)} characters)"
        ) from None


def write_step(run_folder: Path, record: StepRecord) -> Path:
    path = Path(run_folder) / STEPS_DIR / record.file_name
    write_json(path, record.to_dict())
    return path


def read_step(path: Path) -> StepRecord:
    return StepRecord.from_dict(read_json(Path(path)))


def write_run(run_folder: Path, record: RunRecord) -> None:
    write_json(Path(run_folder) / RUN_FILE, record.to_dict())


def read_run(run_folder: Path) -> RunRecord:
    return RunRecord.from_dict(read_json(Path(run_folder) / RUN_FILE))


def write_suite(suite_folder: Path, record: SuiteRecord) -> None:
    write_json(Path(suite_folder) / CAPACITY_FILE, record.to_dict())


def read_suite(suite_folder: Path) -> SuiteRecord:
    return SuiteRecord.from_dict(read_json(Path(suite_folder) / CAPACITY_FILE))
