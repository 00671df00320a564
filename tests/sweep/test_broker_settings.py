"""The broker's statistics emission as a step's instrument (offload_lab/services/broker_settings.py): a
conf.d file on every node, one node restarted at a time, then fresh clients; nothing done when
the setting does not change; the provisioned settings back at the end, also after a failure."""

from __future__ import annotations

import json

import pytest
from sweep_fakes import FakeCore, FakeCpu, FakeK6, FakeQueue, RecordingRemote

from offload_lab.plan import spec as spec_mod
from offload_lab.plan.steps import expand_steps
from offload_lab.records import RunRecord
from offload_lab.run.results import RunFolder
from offload_lab.run.sweep import Sweep, SweepServices
from offload_lab.services.broker_settings import (
    MAIN_CONF,
    SWEEP_CONF,
    BrokerSettings,
    BrokerSettingsError,
    provisioned_interval_ms,
)
from offload_lab.services.gateway import GatewaySettings


class BrokerRemote(RecordingRemote):
    def __init__(self, conf="collect_statistics_interval = 1000\n", left_over=False):
        super().__init__()
        self.files[MAIN_CONF] = conf
        if left_over:
            self.files[SWEEP_CONF] = "collect_statistics_interval = 5000\n"

    def read_text(self, path, missing_ok=True, sudo=False):
        return self.files.get(path)


def settings(remotes, answers=lambda name: True, **kw):
    restarts = []
    broker = BrokerSettings(remotes, answers, lambda: restarts.append("clients"), sleep=lambda s: None, **kw)
    return broker, restarts


def test_the_provisioned_interval_is_read_from_rabbitmq_conf():
    assert (
        provisioned_interval_ms("loopback_users.guest = false\ncollect_statistics_interval = 1000\n") == 1000
    )
    assert provisioned_interval_ms("listeners.tcp.default = 5672\n") == 5000  # RabbitMQ's default
    assert provisioned_interval_ms(None) is None


def test_a_switch_restarts_every_node_in_turn_then_the_clients_and_only_on_change():
    nodes = {"broker1": BrokerRemote(), "broker2": BrokerRemote()}
    broker, restarts = settings(nodes)
    broker.begin()
    assert broker.effective_s(None) == 1.0 and not any(n.restarts for n in nodes.values())
    assert broker.apply(None) is False  # as provisioned already
    assert broker.apply(5000) is True
    for node in nodes.values():
        assert "collect_statistics_interval = 5000" in node.files[SWEEP_CONF] and node.restarts == 1
        assert all(node.as_root)  # root's files and unit
    assert restarts == ["clients"] and broker.effective_s(5000) == 5.0
    assert broker.apply(5000) is False and restarts == ["clients"]
    assert broker.restore() is True
    assert all(SWEEP_CONF not in n.files and n.restarts == 2 for n in nodes.values())


def test_a_file_left_by_a_killed_sweep_goes_first():
    node = BrokerRemote(left_over=True)
    broker, restarts = settings({"broker": node})
    broker.begin()
    assert SWEEP_CONF not in node.files and node.restarts == 1 and restarts == ["clients"]


def test_a_node_that_does_not_come_back_stops_the_switch_naming_it():
    clock = iter(range(0, 10_000, 30))
    broker, restarts = settings(
        {"broker1": BrokerRemote()}, answers=lambda name: False, clock=lambda: next(clock), start_timeout_s=60
    )
    broker.begin()
    with pytest.raises(BrokerSettingsError, match="within 60 s after broker1's restart"):
        broker.apply(5000)
    assert restarts == []


def test_a_series_switches_the_brokers_statistics_and_the_steps_record_it(tmp_path):
    raw = {
        "name": "s",
        "rates": [50],
        "duration_s": 1,
        "max_vus": 10,
        "cooldown_s": 0,
        "modes": ["async"],
        "series": [
            {"label": "stats_1s", "instruments": {"broker_stats_s": 1}},
            {"label": "stats_5s", "instruments": {"broker_stats_s": 5}},
        ],
    }
    spec = spec_mod.apply_overrides(raw, {})
    node = BrokerRemote()
    broker, restarts = settings({"broker": node})
    k6 = FakeK6(load_s=0.05)
    lab = SweepServices(
        k6=k6,
        core=FakeCore(),
        gateway=GatewaySettings(RecordingRemote(), "http://gw", healthy=lambda u: True, sleep=lambda s: None),
        cpu=FakeCpu(),
        queue_depth=FakeQueue(k6, drain_after_s=0.05),
        sample_interval_s=0.05,
        broker_settings=broker,
    )
    folder = RunFolder(tmp_path, "r")
    assert Sweep(spec, expand_steps(spec), lab, folder, {}, lambda m: None).run(RunRecord()) == "complete"
    stats = [
        json.loads((folder.path / "steps" / name).read_text())["step"]["instruments"]["broker_stats_s"]
        for name in ("01-async-50.json", "02-async-50.json")
    ]
    assert stats == [1.0, 5.0]
    # 1 s is what rabbitmq.conf says: written anyway (the step asked for it), then 5 s, then back
    assert node.restarts == 3 and SWEEP_CONF not in node.files and restarts == ["clients"] * 3
