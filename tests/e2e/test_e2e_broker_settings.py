"""The broker's statistics emission switched for a step (`instruments: {broker_stats_s: 5}`,
offload_lab/services/broker_settings.py) on the lab's real RabbitMQ: the broker itself then runs with the
new interval (read from the running node, not from the file), its clients come back, and the
sweep's restore leaves it as provisioned. Runs after the e2e sweep (scripts/e2e.sh)."""

from __future__ import annotations

import pytest

from offload_lab.hosts import inventory
from offload_lab.run.connections import LabConnections, read_password
from offload_lab.services.core import core_healthy
from offload_lab.services.gateway import http_ok

pytestmark = pytest.mark.e2e

EVAL = "rabbitmqctl eval 'application:get_env(rabbit, collect_statistics_interval).'"


@pytest.fixture(scope="module")
def lab():
    connections = LabConnections(inventory.load(), "e2e-broker-settings", read_password())
    try:
        yield connections
    finally:
        connections.close()


def running_interval(lab: LabConnections) -> str:
    broker = lab.remotes[lab.inv.broker.name]
    return broker.run(EVAL, sudo=True, timeout=60).stdout.strip()


def test_the_statistics_interval_is_switched_on_the_running_broker_and_restored(lab):
    settings = lab.broker_settings
    settings.begin()
    provisioned = settings.provisioned_ms
    assert provisioned and running_interval(lab) == f"{{ok,{provisioned}}}"
    wanted = 5000 if provisioned != 5000 else 2000
    try:
        assert settings.apply(wanted) is True
        assert running_interval(lab) == f"{{ok,{wanted}}}"
        # its clients came back: every core's consumer is connected again, every gateway answers
        assert all(core_healthy(f"{url}/healthz") for url in lab.core.urls.values())
        assert all(http_ok(f"{url}/healthz") for url in lab.gateway_urls)
    finally:
        assert settings.restore() is True
    assert running_interval(lab) == f"{{ok,{provisioned}}}"
