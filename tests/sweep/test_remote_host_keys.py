"""Which known_hosts fab checks a host against (offload_lab/hosts/host_keys.py), from the inventory
Ansible reads, and the timeouts every remote call gets (offload_lab/hosts/remote.py); the real SSH
side is in test_remote_loopback.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import plan
from offload_lab.hosts import inventory
from offload_lab.hosts.host_keys import known_hosts_files, ssh_option
from offload_lab.hosts.inventory import InventoryHost
from offload_lab.hosts.remote import DEFAULT_TIMEOUT_S, SFTP_TIMEOUT_S, Remote

REPO = Path("/repo")


def host(common_args: str = "") -> InventoryHost:
    return InventoryHost("vm", "core", "192.0.2.7", ssh_common_args=common_args)


@pytest.mark.parametrize(
    "args, files",
    [
        ("", [Path("~/.ssh/known_hosts").expanduser()]),
        ("-o IdentitiesOnly=yes", [Path("~/.ssh/known_hosts").expanduser()]),
        ("-o UserKnownHostsFile=/k/hosts -o StrictHostKeyChecking=yes", [Path("/k/hosts")]),
        ("-oUserKnownHostsFile=/k/a", [Path("/k/a")]),
        ("-o userknownhostsfile=.lab/ssh/known_hosts", [REPO / ".lab/ssh/known_hosts"]),
        ('-o "UserKnownHostsFile /k/a ~/b"', [Path("/k/a"), Path("~/b").expanduser()]),
        ("-o UserKnownHostsFile=/first -o UserKnownHostsFile=/second", [Path("/first")]),
    ],
)
def test_known_hosts_file_from_the_common_args_as_ssh_reads_them(args, files):
    assert known_hosts_files(host(args), repo_root=REPO) == files


def test_unparsable_args_fall_back_to_the_default():
    assert ssh_option('-o "UserKnownHostsFile=/x', "UserKnownHostsFile") is None


def test_the_lab_inventory_points_fab_at_the_labs_known_hosts(tmp_path):
    """inventory/lab/hosts.yml as labctl writes it, read by Ansible's tooling as fab reads it."""
    known = tmp_path / ".lab" / "ssh" / "known_hosts"
    (tmp_path / "hosts.yml").write_text(plan.inventory_text(plan.address_plan(), tmp_path / "key", known))
    inv = inventory.load(str(tmp_path / "hosts.yml"))
    for h in inv.all_hosts():
        assert known_hosts_files(h) == [known]
        assert Remote(h).known_hosts == [known]
        assert ssh_option(h.ssh_common_args, "StrictHostKeyChecking") == "yes"


class Conn:
    """Fabric's Connection as Remote uses it once open: run with its timeout, an SFTP channel."""

    transport = None

    def __init__(self):
        self.timeouts = []
        self.channel_timeout = None
        self.sftp_client = self

    def open(self):
        pass

    def run(self, command, **kwargs):
        self.timeouts.append(kwargs["timeout"])
        return type("R", (), {"stdout": "", "stderr": "", "exited": 0})()

    def sftp(self):
        return self.sftp_client

    def get_channel(self):
        return self

    def settimeout(self, seconds):
        self.channel_timeout = seconds

    def put(self, fileobj, remote):
        pass

    def get(self, remote, local):
        pass

    def close(self):
        pass


def test_every_call_has_a_timeout():
    remote = Remote(host())
    remote._conn = conn = Conn()
    remote.run("true")
    remote.read_text("/etc/hostname")
    remote.run("true", timeout=5)
    assert conn.timeouts == [DEFAULT_TIMEOUT_S, DEFAULT_TIMEOUT_S, 5]
    assert conn.channel_timeout is None
    remote.put_text("x", "/tmp/x")
    assert conn.channel_timeout == SFTP_TIMEOUT_S  # SFTP: a timeout on its channel
    conn.channel_timeout = None
    remote.get_file("/tmp/x", "/dev/null")
    assert conn.channel_timeout is None, "set once per SFTP session"
    conn.sftp_client = Conn()  # a new SFTP session (after a reconnect)
    remote.get_file("/tmp/x", "/dev/null")
    assert conn.sftp_client.channel_timeout == SFTP_TIMEOUT_S
