"""The broker comparison's tables (offload_lab/analysis/broker_comparison.py) from releases given as data."""

from __future__ import annotations

from offload_lab.analysis.broker_comparison import (
    capacity_row,
    differs,
    headline_table,
    lost_text,
    ratio_text,
)


def release(name, version, p95s_by_rate, capacities, lost=0, cluster=None):
    steps = [
        {"rate": rate, "mode": "async", "repeat": i + 1, "p95_ms": p95, "lost": lost}
        for rate, p95s in p95s_by_rate.items()
        for i, p95 in enumerate(p95s)
    ]
    return {
        "release": name,
        "rabbitmq_version": version,
        "steps": steps,
        "capacity": [
            {"run": f"capacity-r{i}", "capacity_rps": c, "headline": ""} for i, c in enumerate(capacities)
        ],
        "cluster": cluster,
    }


NEW = release("trixie", "4.0.5", {100: [4.0, 5.0, 6.0], 400: [10.0, 12.0, 30.0]}, [150, 160, 170])
OLD = release("bookworm", "3.10.8", {100: [5.5, 7.0, 9.0], 400: [80.0, 90.0, 140.0]}, [120, 125, 130], lost=1)


def test_a_difference_needs_ranges_apart():
    assert differs([10, 12, 30], [80, 90, 140])
    assert not differs([4, 5, 6], [5.5, 7, 9])
    assert not differs([], [1])
    assert ratio_text([4, 5, 6], [5.5, 7, 9]) == "0.71 (ranges overlap)"
    assert ratio_text([10, 12, 30], [80, 90, 140]) == "0.13"
    assert ratio_text([1], [0]) == "n/a"


def test_the_headline_table_reads_median_and_range_per_rate():
    table = headline_table([NEW, OLD]).splitlines()
    head = (
        "| rate (req/s) | p95_ms 4.0.5 (trixie) | p95_ms 3.10.8 (bookworm) "
        "| 4.0.5 (trixie) / 3.10.8 (bookworm) |"
    )
    assert table[0] == head
    assert table[2] == "| 100 | 5.0 [4.0-6.0] | 7.0 [5.5-9.0] | 0.71 (ranges overlap) |"
    assert table[3] == "| 400 | 12.0 [10.0-30.0] | 90.0 [80.0-140.0] | 0.13 |"


def test_capacity_and_ledger_lines():
    assert (
        capacity_row([NEW, OLD])
        == "4.0.5 (trixie): 160 [150-170]/s; 3.10.8 (bookworm): 125 [120-130]/s; ratio 1.28"
    )
    assert lost_text(NEW) == "0 lost in 6 async steps"
    assert lost_text(OLD) == "6 lost in 6 async steps"
    assert lost_text({**NEW, "cluster": None}, "cluster") == "no ledger"
