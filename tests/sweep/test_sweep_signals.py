"""SIGTERM and SIGHUP stop a sweep like Ctrl-C: k6 stopped, run interrupted, settings restored."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest
from sweep_fakes import FakeCore, FakeCpu, FakeK6, FakeQueue, RecordingRemote

from offload_lab.plan import spec as spec_mod
from offload_lab.plan.steps import expand_steps
from offload_lab.records import RunRecord
from offload_lab.run.results import RunFolder
from offload_lab.run.signals import signals_interrupt
from offload_lab.run.sweep import Sweep, SweepServices
from offload_lab.services.gateway import GatewaySettings

RAW = {"name": "s", "rates": [50, 100], "duration_s": 1, "max_vus": 10, "cooldown_s": 0,
       "drain_timeout_s": 1, "gateway": {"GUNICORN_WORKERS": 3}}  # fmt: skip


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_interrupts_the_sweep_like_ctrl_c(tmp_path, signum):
    spec = spec_mod.apply_overrides(RAW, {})
    k6 = FakeK6(load_s=1.0)
    remote = RecordingRemote()
    lab = SweepServices(
        k6=k6,
        core=FakeCore(),
        gateway=GatewaySettings(remote, "http://gw", healthy=lambda u: True, sleep=lambda s: None),
        cpu=FakeCpu(),
        queue_depth=FakeQueue(k6),
        sample_interval_s=0.05,
    )
    folder = RunFolder(tmp_path, "r")
    previous = signal.signal(signum, signal.SIG_IGN)  # as a background job would start
    try:
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signum))
        with signals_interrupt():
            timer.start()
            status = Sweep(spec, expand_steps(spec), lab, folder, {}, lambda m: None).run(RunRecord())
        timer.join()
        assert signal.getsignal(signum) == signal.SIG_IGN  # handlers are put back
    finally:
        signal.signal(signum, previous)
    run = json.loads((folder.path / "run.json").read_text())
    assert status == "interrupted" and run["status"] == "interrupted"
    assert run["error"] == f"interrupted ({signal.Signals(signum).name})"
    assert k6.stopped == 1  # k6 stopped on its host
    assert remote.restarts == 2  # settings applied, then restored
