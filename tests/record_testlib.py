"""Step and run records made by hand for tests (offload_lab.records): what a test does not set
is filled in, so that each test names only the figures it is about."""

from __future__ import annotations

from typing import Any

from offload_lab.records import RunRecord, StepParameters, StepRecord

AT = "2026-01-01T00:00:00.000Z"


def step_record(step: dict[str, Any] | None = None, **sections: Any) -> StepRecord:
    """`step`: the step section's values over defaults (an async step at 10/s for 10 s, labelled
    by its mode); `sections`: the file's other sections (k6, core, broker, hosts, clock, ...)."""
    params = {
        "index": 1,
        "mode": "async",
        "rate": 10,
        "duration_s": 10,
        "pre_allocated_vus": 10,
        "max_vus": 10,
        "work_ms": 0,
        "gateway": {},
        **(step or {}),
    }
    params.setdefault("label", params["mode"])
    base = {"started_at": AT, "load_ended_at": AT, "ended_at": AT, "k6": {}, "core": None, "broker": None}
    return StepRecord(step=StepParameters(**params), **{**base, "hosts": {}, **sections})


def step_file(step: dict[str, Any] | None = None, **sections: Any) -> dict[str, Any]:
    """The step file (parsed JSON) of step_record(step, **sections)."""
    return step_record(step, **sections).to_dict()


def run_file(**fields: Any) -> dict[str, Any]:
    """A run.json (parsed) of a finished run with `fields` set."""
    return RunRecord(**{"started_at": AT, "ended_at": AT, "status": "complete", **fields}).to_dict()
