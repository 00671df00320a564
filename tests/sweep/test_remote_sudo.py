"""Remote's commands as root: `sudo -n` for a login that is not root, nothing for root, and a
loud error naming the user when sudo wants a password or is missing (offload_lab/hosts/remote.py)."""

from __future__ import annotations

import io

import pytest
from sweep_fakes import RecordingRemote

from offload_lab.hosts import inventory
from offload_lab.hosts.inventory import InventoryHost
from offload_lab.hosts.lab_names import CORE_ENV, GATEWAY_ENV
from offload_lab.hosts.remote import Remote, RemoteError
from offload_lab.run.connections import LabConnections
from offload_lab.services.gateway import SWEEP_ENV, GatewaySettings

SUDO_PASSWORD = "sudo: a password is required\n"


class Answer:
    def __init__(self, stdout="", stderr="", exited=0):
        self.stdout, self.stderr, self.exited = stdout, stderr, exited


class FakeConnection:
    """Stands in for fabric's Connection: records commands and uploads; `answers` maps a command
    (exactly as sent) to what the host says; anything else succeeds silently."""

    transport = None  # what Remote sets keepalives on once open: a real one in test_remote_loopback.py

    def __init__(self, answers=None):
        self.commands: list[str] = []
        self.uploads: dict[str, str] = {}
        self.answers = answers or {}

    def open(self):
        pass

    def sftp(self):
        return FakeSftp()

    def run(self, command, **kwargs):
        self.commands.append(command)
        return self.answers.get(command, Answer())

    def put(self, fileobj: io.BytesIO, remote: str):
        self.uploads[remote] = fileobj.getvalue().decode()

    def close(self):
        pass


class FakeSftp:
    def get_channel(self):
        return self

    def settimeout(self, seconds):
        self.timeout = seconds


def remote_for(user: str, answers=None) -> tuple[Remote, FakeConnection]:
    remote = Remote(InventoryHost("lab-gateway", "gateway", "10.77.77.12", user=user))
    conn = FakeConnection(answers)
    remote._conn = conn
    return remote, conn


def test_a_login_that_is_not_root_runs_root_commands_through_sudo():
    remote, conn = remote_for("admin")
    remote.run("systemctl restart offload-gateway", sudo=True)
    remote.run("rm -f /etc/offload/gateway.sweep.env", sudo=True)
    remote.run("k6 version")
    assert conn.commands == [
        "sudo -n true",  # checked once per connection
        "sudo -n sh -c 'systemctl restart offload-gateway'",
        "sudo -n sh -c 'rm -f /etc/offload/gateway.sweep.env'",
        "k6 version",  # not a root command: as the login
    ]


def test_root_runs_root_commands_directly():
    remote, conn = remote_for("root")
    remote.run("systemctl restart offload-gateway", sudo=True)
    remote.put_text("A=1\n", SWEEP_ENV, mode="0644", sudo=True)
    assert remote.read_text(GATEWAY_ENV, sudo=True) == ""
    assert not any("sudo" in c for c in conn.commands), conn.commands
    assert conn.commands[0] == "systemctl restart offload-gateway"
    assert conn.uploads == {SWEEP_ENV: "A=1\n"}


@pytest.mark.parametrize(
    ("stderr", "exited"),
    [(SUDO_PASSWORD, 1), ("sh: 1: sudo: not found\n", 127)],
    ids=["password required", "no sudo"],
)
def test_without_passwordless_sudo_fab_says_so_and_runs_nothing_as_root(stderr, exited):
    remote, conn = remote_for("admin", {"sudo -n true": Answer(stderr=stderr, exited=exited)})
    expected = (
        "lab-gateway (10.77.77.12): fab needs passwordless sudo for admin (as Ansible's become does): "
        + stderr.strip()
    )
    # check=False too: a failed sudo must not pass for "the file is not there"
    with pytest.raises(RemoteError) as info:
        remote.run(f"test -e {SWEEP_ENV}", check=False, sudo=True)
    assert str(info.value) == expected
    with pytest.raises(RemoteError, match="fab needs passwordless sudo for admin"):
        remote.put_text("A=1\n", SWEEP_ENV, sudo=True)
    with pytest.raises(RemoteError, match="fab needs passwordless sudo for admin"):
        remote.read_text(GATEWAY_ENV, sudo=True)
    assert set(conn.commands) == {"sudo -n true"} and not conn.uploads


def test_a_root_file_is_uploaded_to_a_temporary_file_and_installed_with_sudo():
    remote, conn = remote_for("admin", {"mktemp": Answer(stdout="/tmp/tmp.Xy12\n")})
    remote.put_text("PUBLISHER=pika_shared\n", SWEEP_ENV, mode="0644", sudo=True)
    assert conn.uploads == {"/tmp/tmp.Xy12": "PUBLISHER=pika_shared\n"}
    assert conn.commands == [
        "sudo -n true",
        "mktemp",
        f"sudo -n sh -c 'install -m 0644 /tmp/tmp.Xy12 {SWEEP_ENV}'",
        "rm -f /tmp/tmp.Xy12",
    ]


def test_an_unreadable_file_is_an_error_not_a_missing_one():
    read = f"if [ -e {GATEWAY_ENV} ]; then cat {GATEWAY_ENV}; else exit 66; fi"
    denied = Answer(stderr=f"cat: {GATEWAY_ENV}: Permission denied\n", exited=1)
    remote, _ = remote_for("admin", {read: denied})
    with pytest.raises(RemoteError, match="Permission denied"):
        remote.read_text(GATEWAY_ENV)
    missing, _ = remote_for("admin", {read: Answer(exited=66)})
    assert missing.read_text(GATEWAY_ENV) is None
    with pytest.raises(RemoteError, match="no such file"):
        missing.read_text(GATEWAY_ENV, missing_ok=False)


def test_the_gateway_switches_settings_as_root():
    remote = RecordingRemote(sweep_file_exists=True)
    gateway = GatewaySettings(remote, "http://gw:8000", healthy=lambda url: True, sleep=lambda s: None)
    gateway.begin()
    gateway.apply({"PUBLISHER": "pika_shared"})
    gateway.restore()
    assert remote.restarts == 3 and len(remote.commands) == len(remote.as_root) >= 6
    assert all(remote.as_root), list(zip(remote.commands, remote.as_root, strict=True))


def test_the_provisioned_env_files_are_read_as_root(tmp_path):
    hosts = "\n".join(
        f"    {group}: {{hosts: {{lab-{group}: {{ansible_host: 10.77.77.{n}}}}}}}"
        for n, group in enumerate(("broker", "gateway", "core", "loadgen"), start=11)
    )
    (tmp_path / "hosts.yml").write_text(f"all:\n  vars: {{ansible_user: admin}}\n  children:\n{hosts}\n")
    lab = LabConnections(inventory.load(str(tmp_path / "hosts.yml"), repo_root=tmp_path), "run-x", "password")
    reads = []

    class EnvRemote:
        def __init__(self, text):
            self.text = text

        def read_text(self, path, missing_ok=True, sudo=False):
            reads.append((path, sudo))
            return self.text

    lab.remotes = {
        "lab-gateway": EnvRemote("AMQP_URL=amqp://offload:pw@10.77.77.11:5672/offload\nTASK_QUEUE=jobs\n"),
        "lab-core": EnvRemote("PREFETCH=500\n"),
    }
    settings = lab.settings()
    assert settings.gateway["TASK_QUEUE"] == "jobs" and settings.cores == {"lab-core": {"PREFETCH": "500"}}
    assert reads == [(GATEWAY_ENV, True), (CORE_ENV, True)]
