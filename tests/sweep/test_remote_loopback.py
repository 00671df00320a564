"""fab's SSH (offload_lab/hosts/remote.py) against a real SSH server on loopback: host keys checked
against the known_hosts the inventory names (unknown and changed keys refused, with a message
that says how to accept the key, and that advice works), keepalives sent, and a command given no
timeout stopped after the default one.

The server is paramiko's server side, in this process, on 127.0.0.1 with a generated host key
and only our own generated key authorized: this machine has no sshd (openssh-server is not in
deps/debian-packages.txt, and installing it would start a system sshd on port 22). The client
side is exactly fab's: Fabric and paramiko over TCP, real key exchange and host key check."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import paramiko
import pytest

from offload_lab.hosts import remote as remote_mod
from offload_lab.hosts.inventory import InventoryHost
from offload_lab.hosts.remote import HostKeyRefused, Remote, RemoteError


def keygen(path: Path) -> paramiko.Ed25519Key:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return paramiko.Ed25519Key(filename=str(path))


class LoopbackSSHServer:
    """Accepts SSH on 127.0.0.1 with `host_key`, only `authorized` may log in; runs exec requests
    with sh; counts the keepalives clients send."""

    def __init__(self, host_key: paramiko.PKey, authorized: paramiko.PKey):
        self.host_key, self.authorized = host_key, authorized
        self.keepalives = 0
        self.logins: list[str] = []
        self.processes: list[subprocess.Popen] = []
        self.transports: list[paramiko.Transport] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            transport = paramiko.Transport(client)
            transport.add_server_key(self.host_key)
            self.transports.append(transport)
            try:
                transport.start_server(server=_Handler(self))
            except (paramiko.SSHException, EOFError, OSError):
                continue  # the client refused our key: nothing more on this connection

    def run(self, channel: paramiko.Channel, command: str) -> None:
        process = subprocess.Popen(["sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.processes.append(process)
        out, err = process.communicate()
        try:
            channel.sendall(out)
            channel.sendall_stderr(err)
            # killed by a signal: a shell's 128 + signal, as sshd reports it (no negative status)
            status = process.returncode if process.returncode >= 0 else 128 - process.returncode
            channel.send_exit_status(status)
            # EOF, and the client closes the channel. Closing it here raced paramiko's reply to
            # the exec request (sent after check_channel_exec_request returns): a CLOSE that
            # came first failed the client's exec_command with "Channel closed." (seen in CI).
            channel.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException):
            pass  # the client gave up on it (its timeout)

    def close(self) -> None:
        self.sock.close()
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for transport in self.transports:
            transport.close()


class _Handler(paramiko.ServerInterface):
    def __init__(self, server: LoopbackSSHServer):
        self.server = server

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        if key == self.server.authorized:
            self.server.logins.append(username)
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        threading.Thread(target=self.server.run, args=(channel, command.decode()), daemon=True).start()
        return True

    def check_global_request(self, kind, msg):
        if kind == "keepalive@lag.net":
            self.server.keepalives += 1
        return False


@pytest.fixture
def server(tmp_path):
    if not shutil.which("ssh-keygen"):
        pytest.fail("ssh-keygen is needed (openssh-client, deps/debian-packages.txt)")
    host_key = keygen(tmp_path / "host_key")
    client_key = keygen(tmp_path / "client_key")
    srv = LoopbackSSHServer(host_key, client_key)
    srv.client_key_file = str(tmp_path / "client_key")
    srv.host_pub = (tmp_path / "host_key.pub").read_text().split()[:2]
    yield srv
    srv.close()


def remote_for(server, known_hosts: Path, name="vm-1") -> Remote:
    """A Remote as fab makes one from an inventory whose ansible_ssh_common_args name the file."""
    host = InventoryHost(
        name,
        "gateway",
        "127.0.0.1",
        user=getpass.getuser(),
        port=server.port,
        key_file=server.client_key_file,
        ssh_common_args=f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes",
    )
    return Remote(host, connect_timeout=5)


def known_line(server, key_type=None, key=None) -> str:
    kind, blob = server.host_pub
    return f"[127.0.0.1]:{server.port} {key_type or kind} {key or blob}\n"


def test_the_known_key_lets_a_command_run(server, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(known_line(server))
    remote = remote_for(server, known)
    try:
        assert remote.run("echo hello; echo oops >&2").stdout == "hello\n"
        assert remote.run("exit 3", check=False).exited == 3
        assert server.logins == [getpass.getuser()]
    finally:
        remote.close()


@pytest.mark.parametrize("file_exists", [True, False], ids=["empty known_hosts", "no known_hosts"])
def test_an_unknown_host_key_is_refused_with_how_to_accept_it(server, tmp_path, file_exists):
    known = tmp_path / "known_hosts"
    if file_exists:
        known.write_text("")
    remote = remote_for(server, known)
    with pytest.raises(HostKeyRefused) as refused:
        remote.run("touch should-not-exist")
    message = str(refused.value)
    assert message.startswith("vm-1 (127.0.0.1): host key refused:"), message
    assert f"[127.0.0.1]:{server.port} is not in {known}" in message
    assert f"`ssh-keyscan -p {server.port} -H 127.0.0.1 >> {known}`" in message
    assert server.logins == [] and server.processes == []  # refused before logging in
    assert isinstance(refused.value, RemoteError)  # callers that catch RemoteError still do

    # the advice works: accept the key as the message says, then the host is known
    command = message.split("accept it: `", 1)[1].split("`", 1)[0]
    subprocess.run(command, shell=True, check=True, capture_output=True, timeout=30)
    assert remote.run("echo accepted").stdout == "accepted\n"
    remote.close()


def test_a_changed_host_key_is_refused(server, tmp_path):
    other = keygen(tmp_path / "other_key")
    known = tmp_path / "known_hosts"
    known.write_text(known_line(server, "ssh-ed25519", other.get_base64()))
    remote = remote_for(server, known)
    with pytest.raises(HostKeyRefused) as refused:
        remote.run("touch should-not-exist")
    message = str(refused.value)
    assert message.startswith("vm-1 (127.0.0.1): host key refused: it CHANGED."), message
    assert other.fingerprint in message and server.host_key.fingerprint in message
    assert f"ssh-keygen -R '[127.0.0.1]:{server.port}' -f {known}" in message
    assert server.logins == [] and server.processes == []


def test_keepalives_are_sent_on_an_idle_connection(server, tmp_path, monkeypatch):
    monkeypatch.setattr(remote_mod, "KEEPALIVE_S", 1)
    known = tmp_path / "known_hosts"
    known.write_text(known_line(server))
    remote = remote_for(server, known)
    try:
        remote.run("true")
        time.sleep(3.5)
        assert server.keepalives >= 2, server.keepalives
    finally:
        remote.close()


def test_a_command_without_a_timeout_gets_the_default_one(server, tmp_path, monkeypatch):
    monkeypatch.setattr(remote_mod, "DEFAULT_TIMEOUT_S", 1.0)
    known = tmp_path / "known_hosts"
    known.write_text(known_line(server))
    remote = remote_for(server, known)
    try:
        t0 = time.monotonic()
        with pytest.raises(RemoteError, match=r"'sleep 20'.*within 1"):
            remote.run("sleep 20")
        assert time.monotonic() - t0 < 5
        assert remote.run("echo still-usable", timeout=10).stdout == "still-usable\n"
    finally:
        remote.close()
