"""The delay queues' depth, wherever a step file keeps it (offload_lab/analysis/delay_queues.py)."""

from __future__ import annotations

import pytest
from record_testlib import step_record

from offload_lab.analysis.delay_queues import find_delay_queues, per_second
from offload_lab.analysis.load import loaded_step

SAMPLES = [[0.0, 0, 0], [1.0, 3, 3], [2.5, 1, 1]]


def test_the_sweeps_record_of_the_delay_queues():
    """broker.retry_queues as offload_lab/services/retry_queues.py writes it: one sample list for all."""
    step = {
        "broker": {
            "queue": "tasks",
            "samples": [[0.0, 4, 0], [1.0, 2, 0]],
            "retry_queues": {
                "queues": ["tasks.retry.1000", "tasks.retry.4000", "tasks.retry.16000"],
                "max_length": 3,
                "samples": [
                    [0.0, {"tasks.retry.1000": 0, "tasks.retry.4000": 0, "tasks.retry.16000": None}],
                    [1.0, None],  # the read failed
                    [2.0, {"tasks.retry.1000": 3, "tasks.retry.4000": 1, "tasks.retry.16000": None}],
                ],
                "peak": {"tasks.retry.1000": 3, "tasks.retry.4000": 1, "tasks.retry.16000": None},
            },
        }
    }
    queues = find_delay_queues(step, "tasks")
    assert list(queues) == ["tasks.retry.1000", "tasks.retry.4000", "tasks.retry.16000"]
    fast, slow, never = queues.values()
    assert fast.samples == [(0.0, 0), (1.0, None), (2.0, 3)] and per_second(fast) == [0, None, 3]
    assert fast.max_length == 3 and fast.reached_max_length and (fast.peak, fast.peak_at_s) == (3, 2.0)
    assert slow.peak == 1 and not slow.reached_max_length
    assert never.peak is None and never.depths == []


@pytest.mark.parametrize(
    "step",
    [
        # the task queue's sampler report, one per delay queue, in a list under broker
        {"broker": {"queue": "tasks", "retry_queues": [{"queue": "tasks.retry.1000", "samples": SAMPLES}]}},
        # ... or by name, at the top
        {"delay_queues": {"tasks.retry.1000": {"queue": "tasks.retry.1000", "samples": SAMPLES, "peak": 3}}},
        # ... or the bare sample list by name
        {"broker": {"retry": {"tasks.retry.1000": SAMPLES}}},
    ],
)
def test_a_delay_queue_is_found_wherever_the_step_keeps_it(step):
    (queue,) = find_delay_queues(step).values()
    assert queue.name == "tasks.retry.1000" and queue.delay_ms == 1000
    assert queue.samples == [(0.0, 0), (1.0, 3), (2.5, 1)]
    assert (queue.peak, queue.peak_at_s) == (3, 1.0)
    assert per_second(queue) == [0, 3, 1]


def test_only_this_task_queues_delay_queues_in_delay_order():
    step = {
        "broker": {
            "queue": "work",
            "samples": [[0.0, 5, 5]],
            "delays": [
                {"queue": "work.retry.16000", "samples": [[0.0, 1]]},
                {"queue": "work.retry.500", "samples": [[0.0, 2]]},
                {"queue": "tasks.retry.1000", "samples": [[0.0, 9]]},  # another task queue's
                {"queue": "work.retry.4000"},  # no samples: not sampled
            ],
            "facts": {"queues": {"work.retry.500": {"arguments": {"x-max-length": 2, "x-message-ttl": 500}}}},
        }
    }
    queues = find_delay_queues(step, "work")
    assert list(queues) == ["work.retry.500", "work.retry.16000"]
    assert queues["work.retry.500"].max_length == 2 and queues["work.retry.500"].reached_max_length
    assert queues["work.retry.16000"].max_length is None and not queues["work.retry.16000"].reached_max_length
    assert find_delay_queues(step) == {"tasks.retry.1000": find_delay_queues(step)["tasks.retry.1000"]}


def test_failed_polls_and_junk_are_skipped():
    step = {"q": {"queue": "tasks.retry.1000", "samples": [[0.0, None], "x", [1.0], [2.0, 4, 4], [None, 3]]}}
    (queue,) = find_delay_queues(step).values()
    assert queue.samples == [(0.0, None), (2.0, 4)] and queue.peak == 4
    assert per_second(queue) == [None, None, 4]
    assert find_delay_queues({"broker": "not a dict"}) == {} and find_delay_queues([]) == {}
    # a step's instruments say `"samples": true`; the samples file is `{"file": ...}`
    junk = {"step": {"instruments": {"samples": True}}, "samples": {"file": "x"}, "broker": {"samples": 3}}
    assert find_delay_queues(junk) == {}


def test_the_loaded_step_keeps_them():
    record = step_record(
        {"mode": "async", "rate": 10, "duration_s": 5, "core": {"TRANSIENT_FAIL_RATE": "0.1"}},
        broker={"queue": "tasks", "retry_queues": [{"queue": "tasks.retry.1000", "samples": SAMPLES}]},
    )
    step = loaded_step(record, "steps/01-async-10.json", [])
    assert list(step.delay_queues) == ["tasks.retry.1000"]
    assert step.core_settings == {"TRANSIENT_FAIL_RATE": "0.1"}
