"""The files of a run folder, defined once (docs/result-format.md): run.json (RunRecord), the
step files (StepRecord) and a capacity suite's capacity.json (SuiteRecord). `fab` writes them
with write_run, write_step and write_suite, offload_lab.analysis reads them with read_run,
read_step and read_suite. from_dict takes the current shape of a file or one of the older shapes
published runs have (STEP_SHAPES, RUN_SHAPES), anything else is a RecordError naming what is
wrong. Sections whose shape belongs to their producer (k6's summary, the core's stats, ...) are
kept as the JSON objects they are. Standard library only: the lowest room of offload_lab
(docs/architecture.md), which every other may import.

names: the files' names; schema: the records; shapes: the shapes each file has had; convert:
dict <-> record; json_files: reading and writing them."""

from .convert import RecordError, shape_of
from .json_files import (
    read_json,
    read_run,
    read_step,
    read_suite,
    write_json,
    write_run,
    write_step,
    write_suite,
)
from .names import (
    CAPACITY_FILE,
    RUN_FILE,
    SCHEMA_VERSION,
    STEP_FILE_NAME,
    STEPS_DIR,
    SUITE_KIND,
    StepFileName,
    parse_step_file_name,
    step_file_name,
)
from .schema import RunRecord, StepParameters, StepRecord, SuiteRecord, is_suite_table
from .shapes import CURRENT, RUN_SHAPES, STEP_SHAPES, SUITE_SHAPES, Shape

__all__ = [
    "CAPACITY_FILE",
    "CURRENT",
    "RUN_FILE",
    "RUN_SHAPES",
    "SCHEMA_VERSION",
    "STEPS_DIR",
    "STEP_FILE_NAME",
    "STEP_SHAPES",
    "SUITE_KIND",
    "SUITE_SHAPES",
    "RecordError",
    "RunRecord",
    "Shape",
    "StepFileName",
    "StepParameters",
    "StepRecord",
    "SuiteRecord",
    "is_suite_table",
    "parse_step_file_name",
    "read_json",
    "read_run",
    "read_step",
    "read_suite",
    "shape_of",
    "step_file_name",
    "write_json",
    "write_run",
    "write_step",
    "write_suite",
]
