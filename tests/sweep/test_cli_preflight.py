"""Before any load, `fab sweep` and `fab check --preflight` say what to do: a host that does not
answer SSH is named with its address and how to check it; a lab that answers but is not
provisioned gets the command that provisions it (offload_lab/run/preflight.py). No lab is used: hosts
are fakes, or 127.0.0.1 on a closed port."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from paramiko.ssh_exception import AuthenticationException, NoValidConnectionsError

from offload_lab.cli import commands, run_start
from offload_lab.cli.usage import UsageError
from offload_lab.hosts import inventory
from offload_lab.hosts.lab_names import CORE_ENV, GATEWAY_ENV
from offload_lab.hosts.remote import RemoteError, Result
from offload_lab.run import preflight
from offload_lab.run.connections import LabConnections, PasswordError

PROVISION_LAB = "the lab is up but not provisioned: run `ansible-playbook site.yml`"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once closed: connections are refused


def write_inventory(directory: Path, address: str = "10.77.77.{n}", port: int = 22) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    hosts = "\n".join(
        f"    {group}:\n      hosts:\n        lab-{group}: "
        f"{{ansible_host: {address.format(n=n)}, ansible_port: {port}}}"
        for n, group in enumerate(("broker", "gateway", "core", "loadgen"), start=11)
    )
    (directory / "hosts.yml").write_text(f"all:\n  vars:\n    ansible_user: root\n  children:\n{hosts}\n")
    return directory


@pytest.fixture
def lab_inventory(tmp_path):
    """inventory/lab of a repository at tmp_path: the local lab, and the default inventory."""
    return inventory.load(str(write_inventory(tmp_path / "inventory" / "lab")), repo_root=tmp_path)


@pytest.fixture
def vm_inventory(tmp_path):
    source = write_inventory(tmp_path / "inventory" / "mine", address="192.0.2.{n}", port=2222)
    return inventory.load(str(source), repo_root=tmp_path)


class FakeRemote:
    def __init__(self, fails_with: BaseException | None = None, missing=(), delay_s=0.0):
        self.fails_with = fails_with
        self.missing = set(missing)
        self.delay_s = delay_s
        self.commands = []

    def run(self, command, check=True, timeout=None, sudo=False):
        self.commands.append(command)
        time.sleep(self.delay_s)
        if self.fails_with is not None:
            raise RemoteError(f"host: {command!r}: {self.fails_with}") from self.fails_with
        if command.startswith("test -e ") and command.split()[-1] in self.missing:
            return Result("", "", 1)
        return Result("", "", 0)

    def close(self):
        pass


class FakeHealthyServices:
    """k6, the core and the broker as a provisioned lab has them; the gateway at `gateway_url`."""

    def __init__(self, lab: inventory.Inventory, gateway_url: str, password="pw", remotes=None):
        self.inv = lab
        self.password = password
        self.remotes = remotes or {h.name: FakeRemote() for h in lab.all_hosts()}
        self.gateway_url = gateway_url
        self.k6 = SimpleNamespace(version=lambda: "k6 v1.1.0")
        self.core = SimpleNamespace(read=lambda: {"received": 0})
        self.mgmt = SimpleNamespace(queue_depth=lambda queue: 0)

    @property
    def gateway_urls(self):
        return [self.gateway_url]


class _Healthz(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def healthz():
    """A gateway stand-in on 127.0.0.1 that answers /healthz; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# ------------------------------------------------------------------ hosts that do not answer


def test_why_ssh_failed_in_a_few_words():
    def failed(cause):
        try:
            raise RemoteError("lab-core (10.77.77.13): 'true': x") from cause
        except RemoteError as exc:
            return preflight.ssh_failure(exc)

    assert failed(TimeoutError("timed out")) == "timed out"
    refused = ConnectionRefusedError(111, "Connection refused")
    assert failed(NoValidConnectionsError({("10.77.77.13", 22): refused})) == "connection refused"
    assert failed(OSError(113, "No route to host")) == "no route to host"
    assert failed(AuthenticationException("Authentication failed.")) == "authentication failed"


def test_stopped_lab_hosts_are_named_with_their_address_and_labctl_status(lab_inventory, healthz):
    remotes = {
        h.name: FakeRemote(fails_with=TimeoutError("timed out"), delay_s=0.4)
        for h in lab_inventory.all_hosts()
    }
    remotes["lab-broker"] = FakeRemote()
    lab = FakeHealthyServices(lab_inventory, healthz, remotes=remotes)
    lab.k6 = SimpleNamespace(version=pytest.fail)  # nothing else is tried once a host is silent
    start = time.monotonic()
    problems = preflight.problems(lab)
    assert time.monotonic() - start < 1.0, "hosts are tried one after another"
    assert problems == [
        "lab-gateway (10.77.77.12), lab-core (10.77.77.13), lab-loadgen (10.77.77.14) do not answer SSH "
        "(timed out): check with `lab/labctl status`"
    ]


def test_a_real_host_that_refuses_ssh_is_named_with_the_ssh_command_to_try(tmp_path):
    port = closed_port()
    source = write_inventory(tmp_path / "inventory" / "mine", address="127.0.0.1", port=port)
    with pytest.raises(UsageError) as info:
        commands.check("quick", {}, str(source), preflight=True)
    assert info.value.code == 1
    assert str(info.value) == (
        "lab-broker (127.0.0.1), lab-gateway (127.0.0.1), lab-core (127.0.0.1), lab-loadgen (127.0.0.1) "
        f"do not answer SSH (connection refused): check with `ssh -p {port} root@127.0.0.1`"
    )


# ------------------------------------------------------------------ up but not provisioned


@pytest.mark.parametrize(
    "what, detail",
    [
        ("gateway env file", f"lab-gateway: no {GATEWAY_ENV}"),
        ("core env file", f"lab-core: no {CORE_ENV}"),
        ("password", "no RabbitMQ password: .secrets/rabbitmq_controller_password does not exist"),
        ("gateway", "gateway: {url}/healthz does not answer"),
        ("k6", "lab-loadgen: no k6 (`k6 version` failed)"),
    ],
)
def test_a_lab_that_answers_but_is_not_provisioned_says_to_provision(lab_inventory, healthz, what, detail):
    lab = FakeHealthyServices(lab_inventory, healthz)
    if what == "gateway env file":
        lab.remotes["lab-gateway"].missing.add(GATEWAY_ENV)
    elif what == "core env file":
        lab.remotes["lab-core"].missing.add(CORE_ENV)
    elif what == "password":
        lab.password = None
    elif what == "gateway":
        lab.gateway_url = f"http://127.0.0.1:{closed_port()}"
    elif what == "k6":
        lab.k6 = SimpleNamespace(version=lambda: None)
    assert preflight.problems(lab) == [PROVISION_LAB, detail.format(url=lab.gateway_url)]


def test_a_provisioned_lab_passes(lab_inventory, healthz):
    assert preflight.problems(FakeHealthyServices(lab_inventory, healthz)) == []


def test_other_inventories_are_provisioned_with_their_own_i(vm_inventory, healthz):
    lab = FakeHealthyServices(vm_inventory, healthz, password=None)
    assert preflight.problems(lab)[0] == (
        f"the lab is up but not provisioned: run `ansible-playbook -i {vm_inventory.source} site.yml`"
    )


def test_vm_hosts_are_checked_with_ssh_and_their_port(vm_inventory):
    host = vm_inventory.loadgen
    assert vm_inventory.how_to_check(host) == "ssh -p 2222 root@192.0.2.14"
    assert not vm_inventory.is_default and not vm_inventory.is_local_lab


class HealthyButUnprovisioned(LabConnections):
    """The real connections of a lab whose hosts answer (fakes) and whose gateway has no env file."""

    def __init__(self, lab, run_id, password):
        super().__init__(lab, run_id, password)
        self.remotes = {h.name: FakeRemote(missing={GATEWAY_ENV}) for h in lab.all_hosts()}
        self.k6 = SimpleNamespace(version=lambda: "k6 v1.1.0")
        self.core = SimpleNamespace(read=lambda: {})
        self.mgmt = SimpleNamespace(queue_depth=lambda queue: 0)
        self.gateway_url = HealthyButUnprovisioned.gateway_url
        self.gateway_urls = [self.gateway_url]


def test_fab_sweep_and_check_say_to_provision_when_the_password_is_missing(
    monkeypatch, inventory_dir, tmp_path, healthz
):
    def no_password():
        raise PasswordError("no file")

    monkeypatch.setattr(run_start, "read_password", no_password)
    HealthyButUnprovisioned.gateway_url = healthz
    monkeypatch.setattr(run_start, "LabConnections", HealthyButUnprovisioned)
    expected = (
        f"the lab is up but not provisioned: run `ansible-playbook -i {inventory_dir} site.yml`\n"
        "  no RabbitMQ password: .secrets/rabbitmq_controller_password does not exist\n"
        f"  lab-gateway: no {GATEWAY_ENV}"
    )
    with pytest.raises(UsageError) as info:
        commands.sweep("quick", {}, str(inventory_dir), str(tmp_path / "res"))
    assert (str(info.value), info.value.code) == (expected, 1)
    assert not (tmp_path / "res").exists()
    with pytest.raises(UsageError) as info:
        commands.check("quick", {}, str(inventory_dir), preflight=True)
    assert str(info.value) == expected


class NoSudoRemote(FakeRemote):
    def run(self, command, check=True, timeout=None, sudo=False):
        if sudo:
            raise RemoteError(
                "lab-gateway (10.77.77.12): fab needs passwordless sudo for admin (as Ansible's "
                "become does): sudo: a password is required"
            )
        return super().run(command, check, timeout)


def test_a_login_without_passwordless_sudo_is_named_before_provisioning(lab_inventory, healthz):
    lab = FakeHealthyServices(lab_inventory, healthz, password=None)
    lab.remotes["lab-gateway"] = NoSudoRemote()
    (problem,) = preflight.problems(lab)
    assert "fab needs passwordless sudo for admin" in problem and "a password is required" in problem
    assert "not provisioned" not in problem


# ------------------------------------------------------------------ settings fab cannot follow

UNFOLLOWED_SETTINGS = {
    "all.yml": "gateway_config_dir: /srv/offload\ncore_go_service_name: core.service\n",
    "gateway.yml": "gateway_task_queue: jobs\n",  # the cores still consume `tasks`
}


def with_unfollowed_settings(directory: Path) -> Path:
    (directory / "group_vars").mkdir()
    for name, text in UNFOLLOWED_SETTINGS.items():
        (directory / "group_vars" / name).write_text(text)
    return directory


def unfollowed_problems(source) -> list[str]:
    return [
        f"the inventory {source} sets what fab cannot follow: change these settings "
        '(docs/interfaces.md, "What fab reads from the inventory")',
        "the task queue differs between hosts, and fab reads one for the whole lab: "
        "core_go_task_queue is 'tasks' on lab-core; gateway_task_queue is 'jobs' on lab-gateway",
        "gateway_config_dir is '/srv/offload' on lab-gateway: fab supports only '/etc/offload' "
        "(where it reads gateway.env and writes gateway.sweep.env)",
        "core_go_service_name is 'core.service' on lab-core: fab supports only 'offload-core.service' "
        "(the unit it restarts and its faults kill)",
    ]


def test_what_fab_cannot_follow_is_named_before_any_host_is_asked(tmp_path, healthz):
    source = with_unfollowed_settings(write_inventory(tmp_path / "inventory" / "mine"))
    lab = FakeHealthyServices(inventory.load(str(source), repo_root=tmp_path), healthz)
    assert preflight.problems(lab) == unfollowed_problems(source)
    assert not any(remote.commands for remote in lab.remotes.values())


def test_fab_check_says_what_it_cannot_follow_before_connecting(tmp_path):
    port = closed_port()  # were a host tried, it would not answer SSH
    source = write_inventory(tmp_path / "inventory" / "mine", address="127.0.0.1", port=port)
    with pytest.raises(UsageError) as info:
        commands.check("quick", {}, str(with_unfollowed_settings(source)), preflight=True)
    assert (str(info.value), info.value.code) == ("\n  ".join(unfollowed_problems(source)), 1)
