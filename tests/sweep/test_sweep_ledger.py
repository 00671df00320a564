"""The sweep's precondition (an empty queue before each step), the ledger it collects after an
async step, and faults performed during the load, all against fakes."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from sweep_fakes import FakeCore, FakeCpu, FakeK6, FakeQueue, RecordingRemote

from offload_lab.plan import spec as spec_mod
from offload_lab.plan.steps import expand_steps
from offload_lab.records import RunRecord
from offload_lab.run.results import RunFolder
from offload_lab.run.sweep import Sweep, SweepServices
from offload_lab.services.gateway import GatewaySettings
from offload_lab.services.outcomes import StepRefused, wait_until_empty

RAW = {
    "name": "f",
    "rates": [50],
    "duration_s": 1,
    "max_vus": 10,
    "cooldown_s": 0,
    "drain_timeout_s": 2,
    "modes": ["async"],
    "series": [{"label": "kill", "faults": [{"action": "core_kill", "at_s": 0.1}]}],
}


class IdK6(FakeK6):
    """Samples with task ids: three requests accepted (202), one refused (503)."""

    def pull_samples(self, step, local_path):
        local_path.parent.mkdir(parents=True, exist_ok=True)
        rows = "metric_name,timestamp,metric_value,expected_response,status,task_id\n"
        rows += "".join(f"http_req_duration,1796290001234,2.5,true,202,t-{i}\n" for i in range(3))
        rows += "http_req_duration,1796290001300,2.5,false,503,t-3\n"
        with gzip.open(local_path, "wt") as fh:
            fh.write(rows)
        return 4


class Outcomes:
    """tasks.done: each take() gets the next batch (the first: what was left before the step);
    tasks.dead: what dead_letters() shows (management API messages), never removed."""

    def __init__(self, *batches, dead=()):
        self.batches = [[json.dumps(b) for b in batch] for batch in batches]
        self.takes = 0
        self.looks = 0
        self.dead = [
            {"properties": {"message_id": i, "headers": {"x-first-death-reason": r}}, "payload": ""}
            for i, r in dead
        ]

    def dead_letters(self):
        self.looks += 1
        return list(self.dead)

    def purge(self):
        raise AssertionError("records are taken and counted, never purged unseen")

    def take(self):
        self.takes += 1
        return self.batches.pop(0) if self.batches else []


class Faults:
    def __init__(self, faults):
        self.faults = faults
        self.started_at = None

    def start(self, t):
        self.started_at = t

    def join(self):
        return [{**f.as_dict(), "started_unix_s": self.started_at + f.at_s, "ok": True} for f in self.faults]

    def abort(self):
        pass


def run_sweep(tmp_path, outcomes):
    spec = spec_mod.apply_overrides(RAW, {})
    k6 = IdK6()
    performed = []

    def faults(specs):
        performed.append(Faults(specs))
        return performed[-1]

    lab = SweepServices(
        k6=k6,
        core=FakeCore(),
        gateway=GatewaySettings(RecordingRemote(), "http://gw", healthy=lambda u: True, sleep=lambda s: None),
        cpu=FakeCpu(),
        queue_depth=FakeQueue(k6),
        sample_interval_s=0.05,
        ledgers={"broker": outcomes},
        faults=faults,
    )
    folder = RunFolder(tmp_path, "r")
    status = Sweep(spec, expand_steps(spec), lab, folder, {}, lambda m: None).run(RunRecord())
    return status, json.loads((folder.path / "steps/01-async-50.json").read_text()), folder, performed


def test_async_step_records_its_ledger_and_faults(tmp_path):
    records = [("t-0", "done"), ("t-0", "done"), ("t-1", "dead_lettered"), ("t-3", "done")]
    leftover = [{"task_id": "old-1", "outcome": "done"}]
    outcomes = Outcomes(leftover, [{"task_id": i, "outcome": o} for i, o in records])
    status, data, folder, performed = run_sweep(tmp_path, outcomes)
    assert status == "complete" and data["outcome_records_left_before"] == 1
    ledger = data["ledger"]
    assert (ledger["accepted"], ledger["lost"], ledger["duplicated"]) == (3, 1, 1)
    assert ledger["examples"]["lost"] == ["t-2"] and ledger["done_not_accepted"] == 1
    assert (folder.path / ledger["file"]).is_file()  # the raw records are kept
    (fault,) = data["faults"]
    assert fault["action"] == "core_kill" and fault["errors"] == 0 and performed[0].started_at


def test_a_task_the_broker_dead_lettered_is_not_lost(tmp_path):
    """A quorum queue past its delivery limit dead-letters t-2 itself: no record, but it sits in
    tasks.dead (with an earlier step's task, which this step does not count)."""
    records = [{"task_id": f"t-{i}", "outcome": "done"} for i in (0, 1)]
    outcomes = Outcomes([], records, dead=[("t-2", "delivery_limit"), ("old-9", "delivery_limit")])
    status, data, folder, _ = run_sweep(tmp_path, outcomes)
    ledger = data["ledger"]
    assert (ledger["accepted"], ledger["lost"], ledger["dead_lettered_by_broker"]) == (3, 0, 1)
    assert ledger["dead_lettered_by_broker_reasons"] == {"delivery_limit": 1}
    assert ledger["waited_for_records_s"] == 0  # nothing awaited: t-2 was found at once
    with gzip.open(folder.path / ledger["dead_letters_file"], "rt") as fh:
        assert [json.loads(line)["task_id"] for line in fh] == ["t-2"]


def test_the_dead_letter_queue_is_not_looked_at_when_every_id_has_a_record(tmp_path):
    records = [{"task_id": f"t-{i}", "outcome": "done"} for i in range(3)]
    outcomes = Outcomes([], records, dead=[("old-9", "delivery_limit")])
    status, data, folder, _ = run_sweep(tmp_path, outcomes)
    ledger = data["ledger"]
    assert outcomes.looks == 0  # a look costs ~2 ms a message in it
    assert (ledger["lost"], ledger["dead_lettered_by_broker"]) == (0, 0)
    assert (folder.path / ledger["dead_letters_file"]).is_file()


def test_a_dead_letter_queue_that_cannot_be_seen_leaves_a_ledger_that_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr("offload_lab.services.outcomes.SETTLE_S", 0.3)
    outcomes = Outcomes([], [{"task_id": f"t-{i}", "outcome": "done"} for i in (0, 1)])
    outcomes.dead_letters = lambda: (_ for _ in ()).throw(RuntimeError("401 access refused"))
    status, data, _, _ = run_sweep(tmp_path, outcomes)
    ledger = data["ledger"]
    assert ledger["lost"] == 1 and ledger["dead_lettered_by_broker"] is None
    assert "401 access refused" in ledger["dead_letters_error"] and ledger["dead_letters_file"] is None


def test_records_that_come_late_are_still_taken(tmp_path):
    """After a broker restart the queue statistics read 0 while the core is still reconnecting:
    the drain wait ends, the records come a second later, and the ledger waits for them."""
    first = [{"task_id": "t-0", "outcome": "done"}]
    late = [{"task_id": f"t-{i}", "outcome": "done"} for i in (1, 2)]
    outcomes = Outcomes([], first, [], late)
    status, data, folder, _ = run_sweep(tmp_path, outcomes)
    ledger = data["ledger"]
    assert (ledger["accepted"], ledger["lost"], ledger["done"]) == (3, 0, 3)
    assert ledger["waited_for_records_s"] > 0


def test_missing_records_stop_being_awaited_once_none_come(tmp_path, monkeypatch):
    monkeypatch.setattr("offload_lab.services.outcomes.SETTLE_S", 0.3)
    outcomes = Outcomes([], [{"task_id": "t-0", "outcome": "done"}])
    status, data, _, _ = run_sweep(tmp_path, outcomes)
    assert data["ledger"]["lost"] == 2 and data["ledger"]["waited_for_records_s"] < 2


def test_wait_until_empty_refuses_a_step_on_a_backlog():
    t = [0.0]
    with pytest.raises(StepRefused, match=r"still 7 message\(s\) in 'tasks', the core still working"):
        wait_until_empty(
            lambda: 7,
            lambda: False,
            3,
            "tasks",
            clock=lambda: t[0],
            sleep=lambda s: t.__setitem__(0, t[0] + s),
        )
    assert t[0] == pytest.approx(3.0)
    calls = iter([5, 0])
    assert wait_until_empty(lambda: next(calls), lambda: True, 3, "tasks", sleep=lambda s: None) >= 0


def test_a_refused_step_fails_the_sweep_with_the_reason(tmp_path):
    spec = spec_mod.apply_overrides({**RAW, "series": None} | {"series": [{"label": "x"}]}, {})
    k6 = FakeK6()
    lab = SweepServices(
        k6=k6,
        core=FakeCore(),
        gateway=GatewaySettings(RecordingRemote(), "http://gw", healthy=lambda u: True, sleep=lambda s: None),
        cpu=FakeCpu(),
        queue_depth=lambda q: 12,
        sample_interval_s=0.05,
        empty_timeout_s=0.2,
        sleep=lambda s: time.sleep(0.05),
    )
    folder = RunFolder(tmp_path, "r")
    lines = []
    assert Sweep(spec, expand_steps(spec), lab, folder, {}, lines.append).run(RunRecord()) == "failed"
    assert k6.ran == []  # no load was sent
    assert any("cannot start from an empty queue" in line for line in lines)
