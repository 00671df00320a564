"""A series run in both modes is charted and tabled as one series per mode."""

from __future__ import annotations

from offload_lab.analysis.load import LoadedStep, split_mixed_series


def record(label, mode, rate=100):
    return LoadedStep(
        file=f"steps/x-{mode}-{rate}.json", index=1, mode=mode, rate=rate, label=label, duration_s=10
    )


def test_a_series_with_both_modes_splits_by_mode():
    steps = [
        record("gevent", "async"),
        record("gevent", "sync"),
        record("kombu_pool", "async"),
        record("sync", "sync"),
    ]
    split_mixed_series(steps)
    assert [s.label for s in steps] == ["gevent async", "gevent sync", "kombu_pool", "sync"]
