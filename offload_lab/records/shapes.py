"""The shapes each file has had: the current one and the older ones published runs have, which the
reader accepts (docs/result-format.md, "Older shapes")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    """A shape of a record's file: the schema versions written so, and the keys its files lack
    (a nested one as `step.x`), each read as its field's default."""

    name: str
    schema_versions: tuple[int, ...]
    lacks: frozenset[str]
    found_in: str


CURRENT = "current"
STEP_SHAPES = (
    Shape(CURRENT, (1,), frozenset(), "every step file written today"),
    Shape(
        "before instruments",
        (1,),
        frozenset({"step.instruments"}),
        "tests/sweep/fixtures/capacity-before-repeats (published until the 2026-12-07 republication)",
    ),
    Shape(
        "first",
        (1,),
        frozenset(
            {"clock", "samples", "hosts_timeline", "ledger", "faults", "limit"}
            | {"waited_for_empty_queue_s", "outcome_records_left_before"}
            | {"step.request_timeout_s", "step.repeat", "step.repeats", "step.faults", "step.core"}
            | {"step.instruments", "step.gateway_overrides", "step.core_overrides"}
        ),
        "tests/analysis/fixtures (tests/analysis/make_fixtures.py)",
    ),
)
RUN_SHAPES = (
    Shape(CURRENT, (1,), frozenset(), "every run.json written today"),
    Shape("first", (1,), frozenset({"inventory"}), "tests/analysis/fixtures"),
)
SUITE_SHAPES = (Shape(CURRENT, (1,), frozenset(), "every suite's capacity.json"),)
