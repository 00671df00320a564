"""The broker group with one host and with three, as Ansible renders the roles for each host of an
inventory (ansible-playbook on the controller, nothing installed): a single broker's files are
today's (rabbit@localhost, epmd and distribution on loopback, no cluster settings, one AMQP URL);
three brokers form a classic_config cluster (the same node names in every node's list and
/etc/hosts, distribution on the private address, one Erlang cookie generated into .secrets/),
and each gateway and core host gets every node in its AMQP_URL, rotated so that host i starts at
node i mod 3. On the lab: tests/e2e/test_e2e_cluster.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = ("rabbitmq.conf", "rabbitmq-env.conf", "epmd.socket.conf")
BROKERS = {"broker1": "192.0.2.21", "broker2": "192.0.2.22", "broker3": "192.0.2.23"}
CLIENTS = {
    "gateway": {"gateway1": "192.0.2.31", "gateway2": "192.0.2.32"},
    "core": {"core1": "192.0.2.41", "core2": "192.0.2.42", "core3": "192.0.2.43"},
}
# renders, per host, the rabbitmq role's templates (brokers) and the AMQP URLs (clients) with the
# roles' own defaults, as the host plays would; the cluster's /etc/hosts block as the role writes it
PLAYBOOK = """
# the roles' argument validation (tagged always: the run selects no other task of theirs)
- name: Validate the rabbitmq role's settings on the brokers
  hosts: broker
  connection: local
  gather_facts: false
  roles:
    - role: rabbitmq

- name: Validate the offload_broker role's settings on the clients
  hosts: gateway:core
  connection: local
  gather_facts: false
  roles:
    - role: offload_broker

- name: Render what the broker roles make of this inventory
  hosts: all
  connection: local
  gather_facts: false
  tags: [always]
  vars_files:
    - {repo}/roles/offload_broker/defaults/main.yml
    - {repo}/roles/rabbitmq/defaults/main.yml
  vars:
    ansible_managed: managed
  tasks:
    - name: Broker templates
      ansible.builtin.template:
        src: "{repo}/roles/rabbitmq/templates/{{{{ item }}}}.j2"
        dest: "{out}/{{{{ inventory_hostname }}}}.{{{{ item }}}}"
        mode: "0600"
      loop: {templates}
      when: inventory_hostname in groups['broker']

    - name: Values
      ansible.builtin.copy:
        content: "{{{{ values | to_json }}}}"
        dest: "{out}/{{{{ inventory_hostname }}}}.json"
        mode: "0600"
      vars:
        values:
          amqp_urls: "{{{{ offload_broker_amqp_urls }}}}"
          cluster: "{{{{ rabbitmq_cluster }}}}"
          nodename: "{{{{ rabbitmq_nodename if inventory_hostname in groups['broker'] else '' }}}}"
          # as the role's /etc/hosts task (YAML's double quotes make the newline)
          hosts_block: "{{{{ offload_broker_addresses | zip(rabbitmq_cluster_hostnames)
            | map('join', ' ') | join('\\n') }}}}"
          cookie: "{{{{ rabbitmq_erlang_cookie if rabbitmq_cluster else '' }}}}"
"""


def render(tmp_path: Path, brokers: dict[str, str], clients: dict[str, dict[str, str]]) -> Path:
    out, secrets = tmp_path / "out", tmp_path / "secrets"
    out.mkdir()
    groups = {"broker": brokers, **clients, "loadgen": {}}
    inventory = {
        "all": {
            "children": {
                group: {"hosts": {name: {"offload_private_address": addr} for name, addr in hosts.items()}}
                for group, hosts in groups.items()
            }
        }
    }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "render.yml").write_text(PLAYBOOK.format(repo=REPO, out=out, templates=list(TEMPLATES)))
    extra = {"offload_broker_secrets_dir": str(secrets), "ansible_python_interpreter": sys.executable}
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(REPO / "roles"), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "hosts.yml", "render.yml"]
        + ["-e", json.dumps(extra), "--tags", "validation_only"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    validated = re.findall(r"TASK \[(\w+) : Validating arguments against arg spec 'main'", result.stdout)
    assert set(validated) == {"rabbitmq", "offload_broker"}, result.stdout
    return out


def values(out: Path, host: str) -> dict:
    return json.loads((out / f"{host}.json").read_text())


def url_hosts(amqp_url: str) -> list[str]:
    return [re.match(r"amqp://[^@]+@([^:/]+):5672/offload$", url).group(1) for url in amqp_url.split(";")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Path:
    return render(tmp_path_factory.mktemp("cluster"), BROKERS, CLIENTS)


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    return render(
        tmp_path_factory.mktemp("single"),
        {"broker1": "192.0.2.11"},
        {"gateway": {"gateway1": "192.0.2.12"}, "core": {"core1": "192.0.2.13"}},
    )


def test_a_single_broker_is_what_it_was(single):
    conf = (single / "broker1.rabbitmq.conf").read_text()
    assert "listeners.tcp.1 = 192.0.2.11:5672" in conf and "management.tcp.ip = 192.0.2.11" in conf
    assert "cluster_formation" not in conf and "cluster_partition_handling" not in conf
    env = (single / "broker1.rabbitmq-env.conf").read_text()
    assert "NODENAME=rabbit@localhost\n" in env
    assert "ERL_EPMD_ADDRESS=127.0.0.1\n" in env and "inet_dist_use_interface {127,0,0,1}" in env
    epmd = (single / "broker1.epmd.socket.conf").read_text()
    assert re.findall(r"^ListenStream=.*$", epmd, re.M) == ["ListenStream=", "ListenStream=127.0.0.1:4369"]
    v = values(single, "gateway1")
    assert v["cluster"] is False and v["cookie"] == ""
    assert [url.count("amqp://") for url in v["amqp_urls"].values()] == [1, 1]
    assert url_hosts(v["amqp_urls"]["gateway"]) == url_hosts(v["amqp_urls"]["core"]) == ["192.0.2.11"]


def test_three_brokers_list_the_same_nodes_and_resolve_them_alike(cluster):
    nodes = [f"rabbit@{name}" for name in BROKERS]
    blocks = set()
    for name, address in BROKERS.items():
        conf = (cluster / f"{name}.rabbitmq.conf").read_text()
        assert "cluster_formation.peer_discovery_backend = classic_config\n" in conf
        listed = re.findall(r"^cluster_formation\.classic_config\.nodes\.(\d+) = (\S+)$", conf, re.M)
        assert listed == [(str(i), node) for i, node in enumerate(nodes, 1)]
        assert "cluster_partition_handling = pause_minority" in conf
        assert f"listeners.tcp.1 = {address}:5672" in conf and f"management.tcp.ip = {address}\n" in conf
        v = values(cluster, name)
        assert v["cluster"] is True and v["nodename"] == f"rabbit@{name}"
        env = (cluster / f"{name}.rabbitmq-env.conf").read_text()
        assert f"NODENAME=rabbit@{name}\n" in env
        assert f"ERL_EPMD_ADDRESS=127.0.0.1,{address}\n" in env
        assert "inet_dist_use_interface {" + address.replace(".", ",") + "}" in env
        epmd = (cluster / f"{name}.epmd.socket.conf").read_text()
        assert f"ListenStream={address}:4369" in epmd and "ListenStream=127.0.0.1:4369" in epmd
        assert "FreeBind=yes" in epmd
        blocks.add(v["hosts_block"])
    assert blocks == {"\n".join(f"{address} {name}" for name, address in BROKERS.items())}


def test_one_erlang_cookie_generated_into_the_secrets(cluster):
    cookies = {values(cluster, name)["cookie"] for name in BROKERS}
    assert len(cookies) == 1
    cookie = cookies.pop().strip()
    # 48 letters and digits; never 20 capitals, which Debian's postinst would replace
    assert re.fullmatch(r"[A-Za-z0-9]{48}", cookie)
    cookie_file = cluster.parent / "secrets" / "rabbitmq_erlang_cookie"
    assert cookie_file.read_text().strip() == cookie
    assert cookie_file.stat().st_mode & 0o777 == 0o600


def test_the_default_secrets_dir_is_git_ignored():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".secrets/rabbitmq_erlang_cookie"], cwd=REPO, capture_output=True
    )
    assert ignored.returncode == 0


@pytest.mark.parametrize(
    "part, host, first",
    [
        ("gateway", "gateway1", "broker1"),
        ("gateway", "gateway2", "broker2"),
        ("core", "core1", "broker1"),
        ("core", "core2", "broker2"),
        ("core", "core3", "broker3"),
    ],
)
def test_each_client_host_lists_every_node_starting_at_its_own(cluster, part, host, first):
    url = values(cluster, host)["amqp_urls"][part]
    order = list(BROKERS)
    start = order.index(first)
    expected = [BROKERS[n] for n in order[start:] + order[:start]]
    assert url_hosts(url) == expected
    user = f"offload-{part}"
    assert all(u.startswith(f"amqp://{user}:") for u in url.split(";"))


def test_the_cluster_example_inventory_has_the_cluster_layout():
    """inventory/example-cluster: the lab's cluster profile for real VMs, read as Ansible reads it."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(REPO / "inventory" / "example-cluster")])
    sizes = {
        group: len(inventory.groups[group].get_hosts()) for group in ("broker", "gateway", "core", "loadgen")
    }
    assert sizes == {"broker": 3, "gateway": 2, "core": 2, "loadgen": 2}
    variables = VariableManager(loader=loader, inventory=inventory)
    known = {k for p in (REPO / "roles").glob("*/defaults/main.yml") for k in yaml.safe_load(p.read_text())}
    for host in inventory.get_hosts():
        # documentation addresses only (RFC 5737): never a real host
        assert host.vars["ansible_host"].startswith("192.0.2."), host.name
        host_vars = variables.get_vars(host=host)
        assert host_vars["core_go_queue_type"] == "quorum"
    settings = yaml.safe_load((REPO / "inventory/example-cluster/group_vars/all.yml").read_text())
    assert not [k for k in settings if k not in known and not k.startswith("ansible_")]
