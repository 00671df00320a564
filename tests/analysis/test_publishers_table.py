"""The publisher story's table (analysis/publishers_table.py): one row per series, its p95 at
every rate with the drops and errors a repeat had, what it served at the top rate, and the
ledger's lost tasks over all its steps."""

from __future__ import annotations

from offload_lab.analysis import publishers_table as pt
from offload_lab.analysis.metrics import StepMetrics, aggregate

GTHREAD = {
    "PUBLISHER": "pika_shared",
    "PUBLISH_CONFIRM": "1",
    "GUNICORN_WORKER_CLASS": "gthread",
    "GUNICORN_WORKERS": "2",
    "GUNICORN_THREADS": "64",
    "GUNICORN_WORKER_CONNECTIONS": "1000",
}
GEVENT = {**GTHREAD, "PUBLISHER": "kombu_pool", "PUBLISH_CONFIRM": "0", "GUNICORN_WORKER_CLASS": "gevent"}


def _step(label: str, rate: float, repeat: int, p95: float, drop: float = 0.0, errors: float = 0.0,
          lost: int | None = 0) -> StepMetrics:  # fmt: skip
    return StepMetrics(
        file=f"steps/{label}-{rate}-r{repeat}.json", index=repeat, label=label, mode="async", rate=rate,
        duration_s=20, max_vus=100, pre_allocated_vus=100, work_ms=1000, lat_p95=p95, drop_rate=drop,
        error_rate=errors, throughput=rate * (1 - drop), lost=lost, repeat=repeat,
    )  # fmt: skip


def _points() -> list[StepMetrics]:
    return [
        aggregate(
            [
                _step("pika_shared", 100, 1, 250.0, errors=0.2, lost=3),
                _step("pika_shared", 100, 2, 650.0, errors=0.4, lost=9),
            ]
        ),
        aggregate(
            [
                _step("pika_shared", 400, 1, 2000.0, drop=0.7, lost=4),
                _step("pika_shared", 400, 2, 2100.0, drop=0.72, lost=5),
            ]
        ),
        aggregate([_step("kombu_nc", 100, 1, 8.0), _step("kombu_nc", 100, 2, 9.0)]),
        aggregate([_step("kombu_nc", 400, 1, 40.0), _step("kombu_nc", 400, 2, 44.0, drop=0.01)]),
    ]


def test_a_row_per_series_with_every_rate_and_the_top_rate_served():
    lines = pt.table(_points(), {"pika_shared": GTHREAD, "kombu_nc": GEVENT}).splitlines()
    assert lines[0] == (
        "| publisher | gunicorn | p95 at 100/s (ms) | p95 at 400/s (ms) | served at 400/s (/s) | lost |"
    )
    pika = lines[2].split(" | ")
    assert pika[:2] == ["| pika_shared", "gthread 2 x 64"]
    assert pika[2] == "450 [250-650], 30.0% [20.0%-40.0%] errors"
    assert pika[3] == "2,050 [2,000-2,100], 71.0% [70.0%-72.0%] dropped"
    assert pika[4] == "116.0 [112.0-120.0]"  # 400/s x (1 - dropped)
    assert pika[5] == "**3-9 per step, in 4 of 4 steps** |"
    kombu = lines[3].split(" | ")
    assert kombu[:2] == ["| kombu_pool, no confirms", "gevent 2 x 1000"]
    assert kombu[2] == "8.50 [8.00-9.00]"  # nothing dropped or failed: the p95 alone
    assert kombu[3] == "42.0 [40.0-44.0], 0.5% [0.0%-1.0%] dropped"  # one repeat dropped: shown
    assert kombu[5] == "0 in 4 steps |"


def test_lost_without_a_ledger_and_a_missing_point():
    no_ledger = [aggregate([_step("x", 100, 1, 5.0, lost=None), _step("x", 100, 2, 6.0, lost=None)])]
    assert pt.lost_cell(no_ledger) == "no ledger"
    assert pt.p95_cell(None) == "missing"
