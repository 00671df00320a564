"""The controller's clients for an inventory with N hosts per group (nothing is connected)."""

from __future__ import annotations

from offload_lab.hosts import inventory
from offload_lab.loadgen.k6 import RemoteK6
from offload_lab.loadgen.k6_fleet import K6Fleet
from offload_lab.run.connections import EveryGateway, LabConnections
from offload_lab.services.gateway import GatewaySettings

CLUSTER = """\
all:
  children:
    broker: {hosts: {broker1: {ansible_host: 10.77.77.21}, broker2: {ansible_host: 10.77.77.22},
                     broker3: {ansible_host: 10.77.77.23}}}
    gateway: {hosts: {gateway1: {ansible_host: 10.77.77.31}, gateway2: {ansible_host: 10.77.77.32}}}
    core: {hosts: {core1: {ansible_host: 10.77.77.41}, core2: {ansible_host: 10.77.77.42}}}
    loadgen: {hosts: {loadgen1: {ansible_host: 10.77.77.51}, loadgen2: {ansible_host: 10.77.77.52}}}
"""


def test_a_cluster_inventory_gets_a_client_per_host(tmp_path):
    (tmp_path / "hosts.yml").write_text(CLUSTER)
    lab = LabConnections(inventory.load(str(tmp_path / "hosts.yml"), repo_root=tmp_path), "run", "pw")
    assert lab.mgmt.base_urls == [f"http://10.77.77.2{i}:15672" for i in (1, 2, 3)]
    assert isinstance(lab.k6, K6Fleet)
    assert [(g.host, g.segment.segment, g.segment.sequence) for g in lab.k6.generators] == [
        ("loadgen1", "0:1/2", "0,1/2,1"),
        ("loadgen2", "1/2:1", "0,1/2,1"),
    ]
    # every generator round-robins over every gateway
    assert {g.base_url for g in lab.k6.generators} == {"http://10.77.77.31:8000,http://10.77.77.32:8000"}
    assert isinstance(lab.gateway, EveryGateway)
    assert [g.base_url for g in lab.gateway.gateways] == lab.gateway_urls
    assert sorted(lab.core.urls) == ["core1", "core2"]


def test_one_host_per_group_is_today(inventory_dir, tmp_path):
    lab = LabConnections(inventory.load(str(inventory_dir), repo_root=tmp_path), "run", "pw")
    assert isinstance(lab.k6, RemoteK6) and lab.k6.segment is None
    assert lab.k6.base_url == lab.gateway_url == "http://10.77.77.12:8000"
    assert isinstance(lab.gateway, GatewaySettings)
    assert lab.mgmt.base_urls == ["http://10.99.0.11:15672"]
