"""Hosts come from the Ansible inventory through Ansible's own tooling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from offload_lab.hosts import inventory
from offload_lab.hosts.inventory import InventoryError

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_reads_groups_and_addresses(inventory_dir, tmp_path):
    lab = inventory.load(str(inventory_dir), repo_root=tmp_path)
    assert lab.broker.name == "lab-broker"
    # offload_private_address from group_vars wins over ansible_host
    assert lab.broker.address == "10.99.0.11"
    assert lab.gateway.address == "10.77.77.12"
    assert [h.address for h in lab.cores] == ["10.77.77.13", "10.99.0.15"]  # templated hostvar
    assert lab.loadgen.user == "k6user" and lab.loadgen.port == 2222
    assert lab.gateway.user == "root" and lab.gateway.port == 22
    assert lab.gateway.key_file == str(tmp_path / ".lab/ssh/id_ed25519")
    assert [h.name for h in lab.all_hosts()] == [
        "lab-broker",
        "lab-gateway",
        "lab-core",
        "lab-core2",
        "lab-loadgen",
    ]
    assert (lab.cores[1].name, lab.cores[1].address) == ("lab-core2", "10.99.0.15")


def test_ini_inventory(tmp_path):
    p = tmp_path / "hosts.ini"
    p.write_text(
        "[broker]\nb ansible_host=10.0.0.1\n[gateway]\ng ansible_host=10.0.0.2 ansible_user=deb\n"
        "[core]\nc ansible_host=10.0.0.3\n[loadgen]\nl\n"
    )
    lab = inventory.load(str(p), repo_root=tmp_path)
    assert lab.gateway.user == "deb" and lab.loadgen.address == "l" and lab.gateway.key_file is None


def test_missing_group_is_an_error(tmp_path):
    p = tmp_path / "hosts.yml"
    p.write_text("all:\n  children:\n    broker: {hosts: {b: {}}}\n    gateway: {hosts: {g: {}}}\n")
    with pytest.raises(InventoryError, match="'core' is missing"):
        inventory.load(str(p), repo_root=tmp_path)


def test_every_group_may_hold_several_hosts_in_inventory_order(tmp_path):
    p = tmp_path / "hosts.yml"
    p.write_text(
        "all:\n  children:\n"
        "    broker: {hosts: {b1: {ansible_host: 10.0.0.21}, b2: {ansible_host: 10.0.0.22},"
        " b3: {ansible_host: 10.0.0.23}}}\n"
        "    gateway: {hosts: {g2: {ansible_host: 10.0.0.32}, g1: {ansible_host: 10.0.0.31}}}\n"
        "    core: {hosts: {c1: {}, c2: {}}}\n"
        "    loadgen: {hosts: {l1: {ansible_host: 10.0.0.51}, l2: {ansible_host: 10.0.0.52}}}\n"
    )
    lab = inventory.load(str(p), repo_root=tmp_path)
    assert [h.address for h in lab.brokers] == ["10.0.0.21", "10.0.0.22", "10.0.0.23"]
    assert [h.name for h in lab.gateways] == ["g2", "g1"]  # the inventory's order, not sorted
    assert [h.name for h in lab.cores] == ["c1", "c2"]
    assert [h.name for h in lab.loadgens] == ["l1", "l2"]
    # the single-host accessors name the first host of the group
    assert (lab.broker.name, lab.gateway.name, lab.loadgen.name) == ("b1", "g2", "l1")
    assert len(lab.all_hosts()) == 9


def test_one_host_per_group_lists_that_host(inventory_dir, tmp_path):
    lab = inventory.load(str(inventory_dir), repo_root=tmp_path)
    assert lab.brokers == [lab.broker] and lab.gateways == [lab.gateway] and lab.loadgens == [lab.loadgen]


def test_missing_inventory(tmp_path):
    with pytest.raises(InventoryError, match="does not exist"):
        inventory.load(str(tmp_path / "nope"), repo_root=tmp_path)


def test_default_inventory_from_ansible_cfg(tmp_path, monkeypatch):
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    assert inventory.default_inventory(tmp_path) == str(tmp_path / "inventory/lab")  # no ansible.cfg
    (tmp_path / "ansible.cfg").write_text("[defaults]\ninventory = inventory/other\n")
    assert inventory.default_inventory(tmp_path) == str(tmp_path / "inventory/other")


def run_fab(*args):
    fab = Path(sys.executable).parent / "fab"
    return subprocess.run([str(fab), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


def test_fab_check_validates_without_load(inventory_dir):
    ok = run_fab("check", "--spec", "seed", "--inventory", str(inventory_dir), "--rates", "50,100")
    assert ok.returncode == 0, ok.stderr
    assert "4 steps" in ok.stdout and "50 sync, 50 async, 100 sync, 100 async" in ok.stdout
    bad = run_fab("check", "--inventory", str(inventory_dir), "--max-vus", "0", "--publisher-typo", "x")
    assert bad.returncode != 0
    bad = run_fab("check", "--inventory", str(inventory_dir), "--duration", "0", "--modes", "sync,bulk")
    assert bad.returncode == 2
    assert "duration_s (--duration)" in bad.stderr and "modes (--modes)" in bad.stderr
    missing = run_fab("check", "--inventory", str(inventory_dir / "nope"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_the_lab_not_up_is_said_plainly(tmp_path):
    # a fresh clone: the lab's group_vars are tracked, its hosts.yml is written by `lab/labctl up`
    (tmp_path / "inventory" / "lab" / "group_vars").mkdir(parents=True)
    with pytest.raises(inventory.InventoryError, match=r"the lab is not up .*run `make lab-up`"):
        inventory.load(str(tmp_path / "inventory" / "lab"), repo_root=tmp_path)
