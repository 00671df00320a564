"""The delay queues of the core's retries, as the sweep sees them: sampled with the task queue
(one management API request for all) in the async steps that can retry, recorded in the step
file (broker.retry_queues), part of the drain and of the empty start; the ledger waits for a
task whose last record is `retried`; the queue listing on the real broker."""

from __future__ import annotations

import gzip
import json
import time
import uuid

import pika
from real_broker import real_broker
from sweep_fakes import FakeCore, FakeCpu, FakeK6, FakeQueue, RecordingRemote, wait_until

from offload_lab.plan import spec as spec_mod
from offload_lab.plan.steps import expand_steps
from offload_lab.records import RunRecord
from offload_lab.run.results import RunFolder
from offload_lab.run.sweep import Sweep, SweepServices
from offload_lab.services.broker import QueueSampler
from offload_lab.services.gateway import GatewaySettings
from offload_lab.services.outcomes import SETTLE_S, collect_ledger, retries_due_unix_s
from offload_lab.services.retry_queues import RetryQueues, is_delay_queue, samples_retries, waiting_retries

DELAYS = ["tasks.retry.1000", "tasks.retry.4000"]


def test_the_queues_follow_the_cores_settings():
    retry = RetryQueues.of({"RETRY_DELAYS_MS": "1000,4000", "RETRY_QUEUE_MAX_LENGTH": "50"}, "tasks")
    assert retry is not None and retry.names == DELAYS and retry.max_length == 50
    assert RetryQueues.of({}, "jobs").names == ["jobs.retry.1000", "jobs.retry.4000", "jobs.retry.16000"]
    assert RetryQueues.of({"RETRY_DELAYS_MS": ""}, "tasks") is None  # no retry, no delay queue
    assert retry.depths({"tasks": 3, "tasks.retry.1000": 2}) == {
        "tasks.retry.1000": 2,
        "tasks.retry.4000": None,
    }
    assert is_delay_queue("tasks.retry.500", "tasks") and not is_delay_queue("tasks.retry", "tasks")
    assert not is_delay_queue("tasks.retry.5x", "tasks") and not is_delay_queue("tasksXretry.5", "tasks")
    listing = {"tasks": 7, "tasks.retry.500": 1, "tasks.retry.1000": 2, "tasks.dead": 9, "jobs.retry.1": 4}
    assert waiting_retries(listing, "tasks") == 3  # also a delay no longer configured


def test_only_async_steps_that_can_retry_sample_them():
    on = {"TRANSIENT_FAIL_RATE": "0.01"}
    assert samples_retries("async", on)
    assert not samples_retries("sync", on)  # POST /work never touches the queues
    assert not samples_retries("async", {"TRANSIENT_FAIL_RATE": "0"})  # nothing would go there
    assert not samples_retries("async", {**on, "RETRY_DELAYS_MS": ""})  # no retry
    assert not samples_retries("async", {"PERMANENT_FAIL_RATE": "0.5"})  # dead-lettered at once


def test_the_report_gives_each_queues_peak_and_the_full_ones():
    retry = RetryQueues("tasks", (1000, 4000), 5)
    samples = [
        [0.0, {"tasks.retry.1000": 0, "tasks.retry.4000": None}],
        [1.0, None],  # the read failed
        [2.0, {"tasks.retry.1000": 5, "tasks.retry.4000": 1}],
        [3.0, {"tasks.retry.1000": 2, "tasks.retry.4000": 3}],
    ]
    report = retry.report(samples, sample_errors=1)
    assert report == {
        "exchange": "tasks.retry",
        "delays_ms": [1000, 4000],
        "queues": DELAYS,
        "max_length": 5,
        "samples": samples,
        "peak": {"tasks.retry.1000": 5, "tasks.retry.4000": 3},
        "peak_total": 6,
        "full": ["tasks.retry.1000"],  # reached x-max-length: retries refused
        "sample_errors": 1,
    }
    assert retry.report([], 0)["peak"] == {"tasks.retry.1000": None, "tasks.retry.4000": None}


def test_the_sampler_drains_only_once_the_other_queues_are_empty_too():
    waiting = {"n": 3, "fail": False}

    def others():
        if waiting["fail"]:
            raise OSError("management API down")
        return {"tasks.retry.1000": waiting["n"], "tasks.retry.4000": None}

    sampler = QueueSampler(lambda: 0, "tasks", interval_s=0.01, others=others)
    sampler.start()
    sampler.load_ended()
    time.sleep(0.1)
    assert not sampler.wait_drained(0) and sampler.drain_s is None  # the task queue is empty, not they
    sampler = QueueSampler(lambda: 0, "tasks", interval_s=0.01, others=others)
    sampler.start()
    sampler.load_ended()
    waiting["fail"] = True
    assert wait_until(lambda: sampler.other_errors > 2)
    assert not sampler._drained.is_set()  # unread is not empty
    waiting.update(fail=False, n=0)
    assert sampler.wait_drained(2)
    times = [s[0] for s in sampler.samples]
    assert [s[0] for s in sampler.other_samples] == times  # read at the same moments
    assert [None] in [s[1:] for s in sampler.other_samples]
    assert sampler.other_samples[-1][1] == {"tasks.retry.1000": 0, "tasks.retry.4000": None}


# --------------------------------------------------------------------------------------------
# in the sweep


class DelayQueues:
    """The vhost's queue listing: the delay queues hold `held` messages while k6 runs and for
    `hold_s` after the load ended (retries still waiting), then none."""

    def __init__(self, k6, held=4, hold_s=0.3, leftover=0):
        self.k6, self.held, self.hold_s, self.leftover = k6, held, hold_s, leftover
        self.calls = 0

    def __call__(self):
        self.calls += 1
        end = self.k6.load_ended_at
        waiting = self.k6.running or (end is not None and time.monotonic() - end < self.hold_s)
        n = self.held if waiting else 0
        return {
            "tasks": 0,
            "tasks.dead": 0,
            "tasks.retry.1000": n,
            "tasks.retry.4000": 0,
            "tasks.retry.9": self.leftover,
        }


def run(tmp_path, raw, listing=None, **lab_kw):
    spec = spec_mod.apply_overrides(raw, {})
    k6 = FakeK6(load_s=0.05)
    facts_asked = []
    lab_kw.setdefault("sleep", lambda s: time.sleep(min(s, 0.05)))  # the waits for an empty start
    lab = SweepServices(
        k6=k6,
        core=FakeCore(),
        gateway=GatewaySettings(
            RecordingRemote(), "http://gw:8000", healthy=lambda u: True, sleep=lambda s: None
        ),
        cpu=FakeCpu(),
        queue_depth=FakeQueue(k6, drain_after_s=0.02),
        sample_interval_s=0.02,
        queue_depths=(listing or DelayQueues)(k6),
        broker_facts=lambda delay_queues: facts_asked.append(list(delay_queues)) or {"queues": {}},
        **lab_kw,
    )
    folder = RunFolder(tmp_path / "results", "20260101-000000-t")
    sweep = Sweep(spec, expand_steps(spec), lab, folder, {}, lambda line: None)
    status = sweep.run(RunRecord(spec_name="t"))
    steps = {p.name: json.loads(p.read_text()) for p in sorted((folder.path / "steps").glob("*.json"))}
    return status, steps, facts_asked, folder


RETRYING = {
    "name": "t",
    "rates": [50],
    "duration_s": 1,
    "max_vus": 10,
    "cooldown_s": 0,
    "drain_timeout_s": 5,
    "core": {"RETRY_DELAYS_MS": [1000, 4000], "RETRY_QUEUE_MAX_LENGTH": 4},
    "series": [
        {"label": "transient", "core": {"TRANSIENT_FAIL_RATE": 0.1}},
        {"label": "none", "modes": ["async"], "core": {"TRANSIENT_FAIL_RATE": 0}},
    ],
}


def test_an_async_step_that_retries_records_its_delay_queues_and_drains_after_them(tmp_path):
    status, steps, facts_asked, _ = run(tmp_path, RETRYING)
    assert status == "complete"
    assert list(steps) == ["01-sync-50.json", "02-async-50.json", "03-async-50.json"]
    retrying = steps["02-async-50.json"]["broker"]
    queues = retrying["retry_queues"]
    assert queues["queues"] == DELAYS and queues["delays_ms"] == [1000, 4000] and queues["max_length"] == 4
    assert queues["peak"] == {"tasks.retry.1000": 4, "tasks.retry.4000": 0} and queues["full"] == [
        "tasks.retry.1000"
    ]
    assert [s[0] for s in queues["samples"]] == [s[0] for s in retrying["samples"]]
    assert queues["samples"][-1][1] == {"tasks.retry.1000": 0, "tasks.retry.4000": 0}
    # the task queue was empty 0.02 s after the load, the delay queues 0.3 s after it
    assert retrying["drained"] and retrying["drain_observed_s"] >= 0.25
    # sync never uses the queues; async without transient failures puts nothing there
    assert "retry_queues" not in steps["01-sync-50.json"]["broker"]
    assert "retry_queues" not in steps["03-async-50.json"]["broker"]
    assert steps["03-async-50.json"]["step"]["core"]["TRANSIENT_FAIL_RATE"] == "0.0"
    # the broker's facts cover the delay queues the step used (their TTL and length limit)
    assert facts_asked == [[], DELAYS, []]


def test_a_step_without_retries_reads_no_delay_queue(tmp_path):
    raw = {
        **RETRYING,
        "core": {"RETRY_DELAYS_MS": []},
        "series": [{"label": "x", "core": {"TRANSIENT_FAIL_RATE": 0.5}}],
    }
    status, steps, facts_asked, _ = run(tmp_path, {**raw, "modes": ["async"]})
    assert status == "complete" and "retry_queues" not in steps["01-async-50.json"]["broker"]
    assert facts_asked == [[]]


def test_a_step_does_not_start_while_retries_of_an_earlier_one_wait(tmp_path):
    def leftovers(k6):
        return DelayQueues(k6, leftover=2)  # tasks.retry.9: a delay the core no longer uses

    raw = {**RETRYING, "modes": ["async"]}
    status, steps, _, folder = run(
        tmp_path, raw, leftovers, empty_timeout_s=0.05, sleep=lambda s: time.sleep(0.01)
    )
    run_json = json.loads((folder.path / "run.json").read_text())
    assert status == "failed" and steps == {}
    assert "2 message(s) in 'tasks and its delay queues'" in run_json["error"]


# --------------------------------------------------------------------------------------------
# the ledger waits for retries


def _samples(folder, ids):
    path = folder / "samples" / "s.csv.gz"
    path.parent.mkdir(parents=True)
    rows = "metric_name,timestamp,metric_value,expected_response,status,task_id\n"
    rows += "".join(f"http_req_duration,1796290001234,2.5,true,202,{i}\n" for i in ids)
    with gzip.open(path, "wt") as fh:
        fh.write(rows)
    return "samples/s.csv.gz"


class Records:
    """The ledger: `take()` gives what was recorded up to the (fake) time now."""

    def __init__(self, now, timed):
        self.now, self.timed = now, timed  # [(at_s, record)]

    def take(self):
        ready = [json.dumps(r) for at, r in self.timed if at <= self.now[0]]
        self.timed = [(at, r) for at, r in self.timed if at > self.now[0]]
        return ready

    def dead_letters(self):
        return []

    def purge(self):
        pass


def test_the_ledger_waits_for_a_task_whose_last_record_is_retried(tmp_path):
    now = [1000.0]
    due = 16.0  # its last retry waits 16 s in tasks.retry.16000
    timed = [
        (0, {"task_id": "a", "outcome": "done", "attempt": 1}),
        (
            0,
            {
                "task_id": "b",
                "outcome": "retried",
                "attempt": 3,
                "delay_ms": 16000,
                "completed_at_ns": int(1000e9),
            },
        ),
        (due + 1, {"task_id": "b", "outcome": "done", "attempt": 4}),
    ]
    records = Records(now, [(1000 + at, r) for at, r in timed])

    def sleep(s):
        now[0] += s

    ledger = collect_ledger(
        records, tmp_path, "s", _samples(tmp_path, ["a", "b"]), 0, max_wait_s=60,
        clock=lambda: now[0], sleep=sleep, wall=lambda: now[0],
    )  # fmt: skip
    assert due + 1 > SETTLE_S  # without the retry's due time the wait would have ended first
    assert ledger["lost"] == 0 and ledger["unaccounted"] == 0 and ledger["waited_for_records_s"] >= due


def test_a_retry_never_comes_back_within_the_longest_wait():
    records = [
        {"task_id": "b", "outcome": "retried", "delay_ms": 4000, "completed_at_ns": int(10e9)},
        {"task_id": "b", "outcome": "retried", "delay_ms": 16000, "completed_at_ns": int(20e9)},
        {"task_id": "c", "outcome": "retried", "delay_ms": 1000, "completed_at_ns": "bad"},
        {"task_id": "d", "outcome": "done"},
    ]
    assert retries_due_unix_s(records, {"b", "c", "d"}) == 36.0
    assert retries_due_unix_s(records, {"d"}) is None


# --------------------------------------------------------------------------------------------
# the real broker


def test_one_request_lists_every_queues_depth():
    api, conn = real_broker()
    channel = conn.channel()
    base = f"test.retry.{uuid.uuid4().hex[:8]}"
    delay_1, delay_2 = f"{base}.retry.1000", f"{base}.retry.4000"
    for name in (delay_1, delay_2):
        channel.queue_declare(name, durable=True, arguments={"x-message-ttl": 600000, "x-max-length": 10})
    try:
        for i in range(3):
            channel.basic_publish("", delay_1, f"task {i}".encode(), pika.BasicProperties(delivery_mode=2))
        depths = {}
        deadline = time.monotonic() + 20  # the statistics reach the API on the broker's interval
        while depths.get(delay_1) != 3:
            assert time.monotonic() < deadline, depths
            depths = api.queue_depths()
            time.sleep(0.2)
        assert depths[delay_2] == 0 and waiting_retries(depths, base) == 3
        retry = RetryQueues(base, (1000, 4000, 16000), 10)
        assert retry.depths(depths) == {delay_1: 3, delay_2: 0, f"{base}.retry.16000": None}
    finally:
        channel.queue_delete(delay_1)
        channel.queue_delete(delay_2)
        conn.close()
