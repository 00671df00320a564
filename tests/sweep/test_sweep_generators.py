"""The step loop with two real k6 load generators on loopback (fakes for the core, queue and
CPU): the step file holds one merged k6 summary whose percentiles come from the merged samples,
each generator's own summary, and the load's start at the resume; an interrupted step keeps
k6's partial summary."""

from __future__ import annotations

import gzip
import json
import time

from sweep_fakes import FakeCore, FakeCpu, FakeK6, FakeQueue, RecordingRemote
from test_k6_fleet import fleet

from offload_lab.analysis.samples import latency_stats, read_samples
from offload_lab.loadgen import k6 as k6_mod
from offload_lab.plan import spec as spec_mod
from offload_lab.plan.steps import expand_steps
from offload_lab.records import RunRecord
from offload_lab.run.results import RunFolder
from offload_lab.run.sweep import Sweep, SweepServices
from offload_lab.services.gateway import GatewaySettings

RAW = {"name": "g", "rates": [30], "duration_s": 2, "max_vus": 10, "cooldown_s": 0,
       "drain_timeout_s": 1, "modes": ["async"]}  # fmt: skip
META = RunRecord(spec_name="g", overrides={})


def services(k6, queue_depth):
    return SweepServices(
        k6=k6,
        core=FakeCore(),
        gateway=GatewaySettings(RecordingRemote(), "http://gw", healthy=lambda u: True, sleep=lambda s: None),
        cpu=FakeCpu(hosts=("lg1", "lg2")),
        queue_depth=queue_depth,
        host_groups={"lg1": "loadgen", "lg2": "loadgen"},
        sample_interval_s=0.05,
    )


def test_a_step_with_two_load_generators(http_target, tmp_path, monkeypatch):
    monkeypatch.setattr(k6_mod, "REMOTE_BASE", str(tmp_path / "remote"))
    spec = spec_mod.apply_overrides(RAW, {})
    k6 = fleet(http_target.base_url)
    k6.prepare()
    folder = RunFolder(tmp_path / "results", "r")
    lines = []
    before = time.time()
    status = Sweep(spec, expand_steps(spec), services(k6, lambda q: 0), folder, {}, lines.append).run(META)
    assert status == "complete", lines
    data = json.loads((folder.path / "steps" / "01-async-30.json").read_text())
    merged = data["k6"]
    generators = merged["offload"]["generators"]
    counts = [g["summary"]["metrics"]["http_reqs"]["values"]["count"] for g in generators]
    assert merged["metrics"]["http_reqs"]["values"]["count"] == sum(counts) == len(http_target.bodies)
    assert 58 <= sum(counts) <= 61  # 30/s x 2 s
    samples = read_samples(folder.path / data["samples"]["file"])
    assert samples.generators == ("lg1", "lg2") and samples.count == sum(counts)
    trend = merged["metrics"]["http_req_duration"]["values"]
    assert trend["p(99)"] == latency_stats(samples)["p99"] and merged["offload"]["trend_from_samples"]
    assert [g["flags"] for g in generators] == [[], []] and merged["offload"]["flagged"] == []
    resumed = min(g["resumed_unix_s"] for g in generators)
    assert data["clock"]["load_started_unix_s"] == round(resumed, 3) > before  # the resume, not the launch
    with gzip.open(folder.path / data["samples"]["file"], "rt") as fh:
        assert fh.readline().strip().endswith(",task_id,generator")


class InterruptedK6(FakeK6):
    """Ctrl-C during the load; stop() hands back the summary k6 wrote on SIGINT."""

    def run(self, step):
        self.ran.append(step.index)
        raise KeyboardInterrupt

    def stop(self):
        self.stopped += 1
        return {
            "metrics": {"http_reqs": {"type": "counter", "values": {"count": 7}}},
            "offload": {"interrupted": True},
        }


def test_an_interrupted_step_keeps_the_partial_summary(tmp_path):
    spec = spec_mod.apply_overrides(RAW, {})
    k6 = InterruptedK6()
    folder = RunFolder(tmp_path / "results", "r")
    status = Sweep(spec, expand_steps(spec), services(k6, FakeQueue(k6)), folder, {}, lambda m: None).run(
        META
    )
    run = json.loads((folder.path / "run.json").read_text())
    assert status == "interrupted" and run["steps"] == [] and k6.stopped == 1
    assert run["interrupted_step"] == {
        "step": "01-async-30.json",
        "k6_summary": "interrupted/01-async-30.k6.json",
    }
    kept = json.loads((folder.path / run["interrupted_step"]["k6_summary"]).read_text())
    assert kept["metrics"]["http_reqs"]["values"]["count"] == 7
