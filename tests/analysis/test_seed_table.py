"""The README's seed table (offload_lab/analysis/seed_table.py): medians with their ranges per rate, and the
targets read from the data (met only when the data meet them)."""

from __future__ import annotations

from offload_lab.analysis import seed_table
from offload_lab.analysis.metrics import StepMetrics, aggregate


def _step(mode: str, rate: float, repeat: int, avg: float, p95: float, dropped: int = 0, cpu: float = 50.0):
    return StepMetrics(
        file=f"steps/{mode}-{rate}-r{repeat}.json", index=repeat, label="seed", mode=mode, rate=rate,
        duration_s=30, max_vus=100, pre_allocated_vus=50, work_ms=1000, lat_avg=avg, lat_p95=p95,
        lat_p99=p95 * 2, dropped=dropped, drop_rate=dropped / (rate * 30), throughput=rate,
        servers_cpu_load_pct=cpu, repeat=repeat,
    )  # fmt: skip


def _points(**async_400: float) -> dict:
    avg, p95, cpu = async_400.get("avg", 2.0), async_400.get("p95", 4.0), async_400.get("cpu", 55.0)
    dropped = int(async_400.get("dropped", 0))
    points = {}
    for mode in ("sync", "async"):
        for rate in (50, 400):
            if mode == "async" and rate == 400:
                reps = [
                    _step(mode, rate, r, avg + r / 10, p95 + r / 10, dropped if r == 2 else 0, cpu + r)
                    for r in (1, 2, 3)
                ]
            else:
                reps = [
                    _step(mode, rate, r, 1005.0 if mode == "sync" else 2.0, 1010.0 if mode == "sync" else 3.0)
                    for r in (1, 2, 3)
                ]
            points[(mode, rate)] = aggregate(reps)
    return points


def test_the_targets_are_met_only_when_the_medians_meet_them():
    text = seed_table.targets_text(_points())
    assert "avg 2.20 ms (target at most 4: met)" in text
    assert "p95 4.20 ms (target at most 10: met)" in text
    assert "CPU 0 (broker, gateway and core) 57.0% busy during the load (target at most 60: met)" in text
    assert "0 iterations dropped in 6 async steps (target 0: met)" in text
    missed = seed_table.targets_text(_points(avg=4.5, p95=12, cpu=60, dropped=3))
    assert "avg 4.70 ms (target at most 4: missed)" in missed
    assert "p95 12.2 ms (target at most 10: missed)" in missed
    assert "CPU 0 (broker, gateway and core) 62.0% busy during the load (target at most 60: missed)" in missed
    assert "3 iterations dropped in 6 async steps (target 0: missed)" in missed


def test_a_row_per_rate_with_the_range_of_the_repeats():
    lines = seed_table.table(_points()).splitlines()
    assert len(lines) == 4  # head, rule, 50, 400
    row_400 = lines[3].split(" | ")
    assert row_400[0] == "| 400"
    assert row_400[4] == "2.20 [2.10-2.30]"  # async avg: median [min-max]
    assert row_400[-1] == "57.0 [56.0-58.0] |"
