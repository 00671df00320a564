"""What the files of a run folder are called (run.json, the steps folder and a step file's name,
capacity.json) and the schema version and suite kind the files carry."""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEMA_VERSION = 1
RUN_FILE = "run.json"
STEPS_DIR = "steps"
CAPACITY_FILE = "capacity.json"  # a capacity search's result; in a suite's folder, its SuiteRecord
SUITE_KIND = "capacity-suite"  # SuiteRecord.kind: tells a suite's capacity.json from a search's
STEP_FILE_NAME = re.compile(
    r"^(?P<index>\d+)-(?P<mode>[A-Za-z0-9_]+)-(?P<rate>\d+(?:\.\d+)?)(?:-r(?P<repeat>\d+))?\.json$"
)


def step_file_name(index: int, mode: str, rate: float, repeat: int = 1, repeats: int = 1) -> str:
    """`01-async-400.json`; `01-async-400-r2.json` when the spec repeats every point."""
    return f"{index:02d}-{mode}-{rate}" + (f"-r{repeat}" if repeats > 1 else "") + ".json"


@dataclass(frozen=True)
class StepFileName:
    """What a step file's name says: where a step that cannot be read belongs."""

    index: int
    mode: str
    rate: float
    repeat: int


def parse_step_file_name(name: str) -> StepFileName | None:
    match = STEP_FILE_NAME.match(name)
    if not match:
        return None
    repeat = int(match["repeat"]) if match["repeat"] else 1
    return StepFileName(int(match["index"]), match["mode"], float(match["rate"]), repeat)
