"""The instruments' cost table (offload_lab/analysis/overhead.py) from an overhead run given as data."""

from __future__ import annotations

from offload_lab.analysis.overhead import (
    effect_text,
    paired_ratios,
    point_table,
    target_text,
)


def point(figures_by_series):
    steps = [
        {"series": series, "repeat": i + 1, "instruments": f"{series} line", **row}
        for series, rows in figures_by_series.items()
        for i, row in enumerate(rows)
    ]
    return {"run": "r", "mode": "async", "rate": 400, "git_commit": "abc", "git_dirty": False,
            "calibration": None, "steps": steps}  # fmt: skip


def rows(p95s, cpus, avg=2.0):
    return [
        {"avg_ms": avg, "p95_ms": p, "p99_ms": 2 * p, "dropped_pct": 0.0, "servers_cpu_pct": c}
        for p, c in zip(p95s, cpus, strict=True)
    ]


POINT = point(
    {
        "all_off": rows([5.0, 6.0, 7.0], [50.0, 51.0, 52.0]),
        "ledger_broker": rows([9.0, 10.0, 12.0], [60.0, 61.0, 63.0]),
        "samples": rows([5.5, 6.5, 8.0], [50.5, 51.0, 52.5]),
        "all_on": rows([6.0, 6.3, 7.5], [52.0, 53.0, 53.5]),
    }
)


def test_an_effect_is_read_against_all_off_and_marked_when_the_repeats_cannot_tell():
    assert effect_text(POINT, "ledger_broker", "p95_ms") == "x1.67"
    assert effect_text(POINT, "ledger_broker", "servers_cpu_pct") == "+10.0 pts"
    assert effect_text(POINT, "samples", "p95_ms") == "x1.08 (within noise)"
    assert effect_text(POINT, "missing", "p95_ms") == "n/a"


def test_the_table_has_a_row_per_series_with_spread_and_effect():
    table = point_table(POINT).splitlines()
    assert table[2].startswith("| all_off | all_off line | 2.0 | 6.0 [5.0-7.0] | 12.0 [10.0-14.0] | 0.00 |")
    assert "10.0 [9.0-12.0]<br>x1.67" in table[3] and "61.0 [60.0-63.0]<br>+10.0 pts" in table[3]
    assert len(table) == 6


def test_all_on_is_read_against_the_targets():
    assert target_text(POINT) == (
        "all on against all off: p95 x1.05 (target at most x1.10: met, ranges overlap); "
        "servers' CPU +2.0 points (target at most +3: met); "
        "p95 repeat by repeat x1.07 [1.05-1.20], above x1.10 in 1 of 3"
    )
    worse = point({"all_off": rows([5.0], [50.0]), "all_on": rows([6.0], [54.0])})
    assert "x1.20 (target at most x1.10: missed)" in target_text(worse)
    assert "+4.0 points (target at most +3: missed)" in target_text(worse)
    assert "repeat by repeat" not in target_text(worse)  # one pair tells no spread
    stats = point({"stats_1s": rows([6.0, 6.5], [54.0, 55.0]), "stats_5s": rows([5.0, 5.5], [50.0, 51.0])})
    assert target_text(stats) == "each series against stats_1s: see the table"
    assert effect_text(stats, "stats_5s", "servers_cpu_pct") == "-4.0 pts"  # against the run's first


def test_pairs_are_made_by_repeat_and_skip_a_repeat_missing_either_side():
    p = point({"all_off": rows([5.0, 4.0, 8.0], [50.0] * 3), "all_on": rows([6.0, 4.0], [50.0] * 2)})
    assert paired_ratios(p, "p95_ms") == [1.2, 1.0]


def test_cpu_during_the_load_is_its_own_column_and_only_where_host_sampling_ran():
    with_load = rows([5.0, 6.0], [60.0, 61.0])
    for row, during in zip(with_load, [75.0, 77.0], strict=True):
        row["servers_cpu_load_pct"] = during
    faster = rows([5.0, 6.0], [50.0, 51.0])
    for row, during in zip(faster, [69.0, 70.0], strict=True):
        row["servers_cpu_load_pct"] = during
    p = point({"gevent_2": with_load, "gthread": faster, "no_sampling": rows([5.0, 6.0], [50.0, 51.0])})
    table = point_table(p).splitlines()
    assert table[0].endswith("| CPU 0 during the load % |")
    assert table[2].endswith("| 76.0 [75.0-77.0] |")
    assert table[3].endswith("| 69.5 [69.0-70.0]<br>-6.5 pts |")
    assert table[4].endswith("| n/a |")  # no reading, no effect either
