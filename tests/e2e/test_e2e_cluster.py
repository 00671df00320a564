"""Assertions on a sweep run on the lab with N hosts per group, from the inventory and the run:
every broker node runs in one cluster (management API), which recovered from the faults; epmd,
distribution and management on the addresses they belong on (over SSH); one Erlang cookie; the
load generators' own counts add up to each step's merged counts; every core took tasks; a step
with a broker node killed lost nothing. Any run satisfies them (one host per group: one node,
one generator); the cluster run (`make e2e-cluster`, k6/sweeps/cluster.yml) must also have
3 nodes, 2 generators, 2 cores and its broker_kill steps."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from offload_lab.hosts import inventory as lab_inventory
from offload_lab.run.connections import read_password

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SSH_CONFIG = REPO / ".lab" / "ssh" / "config"
COOKIE_FILE = REPO / ".secrets" / "rabbitmq_erlang_cookie"
BROKER_FAULTS = ("broker_kill", "broker_restart")
RECOVERY_WAIT_S = 120


@pytest.fixture(scope="module")
def inventory():
    return lab_inventory.load()


@pytest.fixture(scope="module")
def is_cluster_run(run) -> bool:
    return run["spec"]["name"] == "cluster"


def management(inventory, host, path: str):
    """GET a broker node's management API as fab: its port and user are the inventory's."""
    names = inventory.names
    response = requests.get(
        f"{names.http_url(host)}/api/{path}", auth=(names.broker.controller_user, read_password()), timeout=10
    )
    response.raise_for_status()
    return response.json()


def task_queue_path(inventory) -> str:
    names = inventory.names.broker
    return f"queues/{quote(names.vhost, safe='')}/{quote(names.task_queue, safe='')}"


def ssh(host, command: str) -> str:
    result = subprocess.run(
        ["ssh", "-F", str(SSH_CONFIG), host.name, command],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{host.name}: {command}: {result.stderr}"
    return result.stdout


def metric(summary, name: str, key: str = "count"):
    return ((summary.get("metrics") or {}).get(name) or {}).get("values", {}).get(key, 0)


def generators(step) -> list[dict]:
    return ((step["k6"].get("offload") or {}).get("generators")) or []


def test_the_run_used_every_host_and_the_loadgens_have_their_own_cpu(run, inventory, is_cluster_run):
    recorded = {group: [h["name"] for h in hosts] for group, hosts in run["hosts"].items()}
    assert recorded == {group: [h.name for h in hosts] for group, hosts in inventory.groups.items()}
    loadgen_cpus = {h["cpu_list"] for h in run["hosts"]["loadgen"]}
    service_cpus = {h["cpu_list"] for group in ("broker", "gateway", "core") for h in run["hosts"][group]}
    assert not loadgen_cpus & service_cpus, run["hosts"]
    if is_cluster_run:
        sizes = {group: len(hosts) for group, hosts in recorded.items()}
        assert sizes == {"broker": 3, "gateway": 2, "core": 2, "loadgen": 2}, sizes


def test_every_broker_node_runs_in_one_cluster_again(inventory):
    """After the sweep (and its faults), each node lists every node of the group running and no
    partition; a quorum task queue has a member on every node, all online."""
    expected = sorted(f"rabbit@{h.name}" for h in inventory.brokers) if len(inventory.brokers) > 1 else None
    deadline = time.monotonic() + RECOVERY_WAIT_S
    while True:
        problems = []
        for host in inventory.brokers:
            try:
                nodes = management(inventory, host, "nodes")
                queue = management(inventory, host, task_queue_path(inventory))
            except requests.RequestException as exc:
                problems.append(f"{host.name}: {exc}")
                continue
            running = sorted(n["name"] for n in nodes if n.get("running"))
            if len(running) != len(inventory.brokers) or (expected and running != expected):
                problems.append(f"{host.name} sees running {running}")
            problems += [f"{n['name']}: partitions {n['partitions']}" for n in nodes if n.get("partitions")]
            if queue.get("type") == "quorum" and sorted(queue.get("online") or []) != sorted(
                queue.get("members") or []
            ):
                problems.append(f"queue tasks: members {queue.get('members')}, online {queue.get('online')}")
            if queue.get("type") == "quorum" and len(queue.get("members") or []) != len(inventory.brokers):
                problems.append(f"queue tasks: members {queue.get('members')}")
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert not problems, problems


def test_the_cluster_run_uses_quorum_queues(inventory, is_cluster_run):
    if is_cluster_run:
        queue = management(inventory, inventory.brokers[0], task_queue_path(inventory))
        assert queue["type"] == "quorum" and queue["durable"], queue


def test_erlang_and_management_listen_where_they_belong(inventory):
    """Management and AMQP on the private address only; a single broker keeps epmd and the Erlang
    distribution on loopback, a cluster's nodes use their private address for them."""
    cluster = len(inventory.brokers) > 1
    for host in inventory.brokers:
        listening = {line.split()[3] for line in ssh(host, "sudo -n ss -ltnH").splitlines() if line.strip()}
        ports = (inventory.names.http_ports["broker"][host.name], inventory.names.amqp_ports[host.name])
        assert {a for a in listening if a.endswith(tuple(f":{p}" for p in ports))} == {
            f"{host.address}:{p}" for p in ports
        }, (host.name, listening)
        distribution = {a for a in listening if a.endswith(":25672")}
        assert distribution == {f"{host.address if cluster else '127.0.0.1'}:25672"}, (host.name, listening)
        epmd = {a for a in listening if a.endswith(":4369")}
        assert epmd == ({"127.0.0.1:4369", f"{host.address}:4369"} if cluster else {"127.0.0.1:4369"}), (
            host.name,
            listening,
        )


def test_a_clusters_nodes_share_the_controllers_erlang_cookie(inventory):
    """A cluster's nodes: the cookie generated on the controller (0600 there), 0400 rabbitmq on
    each node. A single broker is not set up to cluster at all."""
    if len(inventory.brokers) == 1:
        conf = ssh(inventory.brokers[0], "sudo -n cat /etc/rabbitmq/rabbitmq.conf")
        assert "cluster_formation" not in conf
        return
    wanted = hashlib.sha256(COOKIE_FILE.read_text().strip().encode()).hexdigest()
    cookie = "/var/lib/rabbitmq/.erlang.cookie"
    for host in inventory.brokers:
        lines = ssh(host, f"sudo -n stat -c '%a %U' {cookie}; sudo -n sha256sum {cookie}").splitlines()
        assert lines[0] == "400 rabbitmq", (host.name, lines)
        assert lines[1].split()[0] == wanted, host.name
    assert COOKIE_FILE.stat().st_mode & 0o777 == 0o600


def test_the_generators_counts_add_up_to_the_steps(steps, inventory, is_cluster_run):
    n = len(inventory.loadgens)
    for step in steps:
        parts = generators(step)
        where = step["step"]
        if n == 1:
            assert len(parts) <= 1, where
            continue
        assert [g["host"] for g in parts] == [h.name for h in inventory.loadgens], where
        assert len({g["segment"] for g in parts}) == n, where
        for name in ("http_reqs", "iterations", "dropped_iterations"):
            own = [metric(g["summary"], name) for g in parts]
            assert sum(own) == metric(step["k6"], name), (where, name, own)
        # each generator sent its share of the step (execution segments split the rate)
        for g in parts:
            assert metric(g["summary"], "http_reqs") > 0, (where, g["host"])
    if is_cluster_run:
        assert n == 2 and all(len(generators(s)) == 2 for s in steps)


def test_every_core_took_tasks(steps, inventory):
    """Competing consumers: in every async step each core completed some of the tasks."""
    for step in steps:
        if step["step"]["mode"] != "async":
            continue
        assert step["core"]["completed"] > 0, step["step"]
        per_host = step["core"].get("per_host")
        if len(inventory.cores) == 1:
            assert per_host is None, step["step"]
            continue
        assert sorted(per_host) == sorted(h.name for h in inventory.cores), step["step"]
        assert all((s or {}).get("completed", 0) > 0 for s in per_host.values()), (step["step"], per_host)
        assert sum(s["completed"] for s in per_host.values()) == step["core"]["completed"], step["step"]


def test_a_broker_node_killed_mid_step_loses_nothing(steps, inventory, is_cluster_run):
    faulted = [s for s in steps if any(f["action"] in BROKER_FAULTS for f in s.get("faults") or [])]
    if is_cluster_run:
        planned = [s for s in steps if s["step"].get("label") == "broker_kill"]
        assert planned and faulted == planned, "the cluster run's broker_kill steps"
        # node 2 (k6/sweeps/cluster.yml): where gateway2 and core2 connect first
        assert {f["host"] for s in planned for f in s["faults"]} == {inventory.brokers[1].name}
    for step in faulted:
        where = step["step"]
        for fault in step["faults"]:
            assert fault["ok"], (where, fault)
            assert fault["host"] in [h.name for h in inventory.brokers], (where, fault)
            # the clients saw the broker again before the end of load
            assert fault["recovery_s"] is not None, (where, fault)
        ledger = step["ledger"]
        assert "error" not in ledger, (where, ledger)
        assert ledger["accepted"] > 0, where
        assert ledger["lost"] == 0, (where, ledger)
        assert ledger["still_queued"] == 0, (where, ledger)
