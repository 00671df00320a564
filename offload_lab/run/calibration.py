"""The calibration point every run records before its first step: the same short, fixed load on
the gateway's POST /noop (/async's answer without the publish: gunicorn, Flask and the network,
no broker, no core), whatever the spec. This machine's speed changes from day to day (the same
no-op app held 2,400/s at p95 1 ms one day and 800/s another), so an absolute figure of a run is
read next to its calibration (docs/measurement.md, "Calibration"); run.json keeps it under
`calibration` and the report header shows it."""

from __future__ import annotations

from typing import Any

from ..plan.instruments import Instruments
from ..plan.steps import PlannedStep

RATE = 200  # req/s: well inside the no-op app's capacity on the slowest day measured (800/s)
DURATION_S = 10
VUS = 50


def calibration_step() -> PlannedStep:
    return PlannedStep(
        index=0,
        mode="noop",
        rate=RATE,
        duration_s=DURATION_S,
        pre_allocated_vus=VUS,
        max_vus=VUS,
        work_ms=0,
        label="calibration",
        instruments=Instruments(samples=False, host_sampling_s=0),
    )


def _values(summary: dict[str, Any], metric: str) -> dict[str, Any]:
    values = ((summary.get("metrics") or {}).get(metric) or {}).get("values")
    return values if isinstance(values, dict) else {}


def calibration_record(summary: dict[str, Any]) -> dict[str, Any]:
    """What run.json keeps of the calibration's k6 summary."""
    duration = _values(summary, "http_req_duration")
    requests = _values(summary, "http_reqs").get("count") or 0
    dropped = _values(summary, "dropped_iterations").get("count") or 0  # absent when none
    failed = _values(summary, "http_req_failed").get("rate")
    offered = RATE * DURATION_S

    def ms(key: str) -> float | None:
        value = duration.get(key)
        return round(float(value), 3) if isinstance(value, int | float) else None

    return {
        "endpoint": "POST /noop",
        "rate": RATE,
        "duration_s": DURATION_S,
        "vus": VUS,
        "requests": requests,
        "avg_ms": ms("avg"),
        "p50_ms": ms("med"),
        "p95_ms": ms("p(95)"),
        "p99_ms": ms("p(99)"),
        "dropped_pct": round(100 * dropped / offered, 3),
        "failed_pct": round(100 * float(failed), 3) if isinstance(failed, int | float) else None,
    }


def calibrate(k6: Any) -> dict[str, Any]:
    """Run the calibration load with `k6` (offload_lab.run.sweep_services.K6Like); never raises: a
    run whose calibration failed says why and goes on."""
    try:
        return calibration_record(k6.run(calibration_step()))
    except Exception as exc:  # noqa: BLE001 - the run's steps are still worth measuring
        return {"endpoint": "POST /noop", "rate": RATE, "duration_s": DURATION_S, "error": str(exc)}
