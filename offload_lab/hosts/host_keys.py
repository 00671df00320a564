"""Host key checking for fab's SSH, like Ansible's `host_key_checking`: every host's key must be
in the known_hosts file that applies to it, or the connection is refused (paramiko's
RejectPolicy, with a message that names the host and how to accept its key).

The file: `UserKnownHostsFile` from the host's `ansible_ssh_common_args` when it names one (the
lab's inventory names `.lab/ssh/known_hosts`, which `lab/labctl up` writes from each host's own
disk), else OpenSSH's default `~/.ssh/known_hosts`.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from ..paths import REPO_ROOT
from .inventory import InventoryHost

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
LAB_KNOWN_HOSTS_MARK = ".lab/ssh/"


class HostKeyError(RuntimeError):
    """The host's key is not the one known for it: nothing was sent to it."""


class UnknownHostKey(HostKeyError):
    pass


def known_hosts_files(host: InventoryHost, repo_root: Path = REPO_ROOT) -> list[Path]:
    """The known_hosts files for this host, as ssh would take them from its common args
    (`-o UserKnownHostsFile=F`, `-oUserKnownHostsFile=F`, `-o "UserKnownHostsFile F1 F2"`);
    a relative path is relative to the repository, where ansible-playbook runs."""
    value = ssh_option(host.ssh_common_args, "UserKnownHostsFile") or DEFAULT_KNOWN_HOSTS
    files = []
    for name in value.split():
        path = Path(name).expanduser()
        files.append(path if path.is_absolute() else repo_root / path)
    return files


def ssh_option(args: str, option: str) -> str | None:
    """The value of `-o OPTION=VALUE` (or `-oOPTION VALUE`, any case) in an ssh command line;
    the first one wins, as in ssh."""
    try:
        words = shlex.split(args or "")
    except ValueError:
        return None
    for i, word in enumerate(words):
        if word == "-o" and i + 1 < len(words):
            setting = words[i + 1]
        elif word.startswith("-o") and len(word) > 2:
            setting = word[2:]
        else:
            continue
        key, _, value = setting.replace("=", " ", 1).partition(" ")
        if key.lower() == option.lower() and value.strip():
            return value.strip()
    return None


def known_host_name(address: str, port: int) -> str:
    """How known_hosts names a host: its address, or `[address]:port` off port 22."""
    return address if port == 22 else f"[{address}]:{port}"


def describe(key) -> str:
    return f"{key.get_name()} {key.fingerprint}"


def _files_text(files: list[Path]) -> str:
    return " ".join(str(f) for f in files)


def _how_to_accept(host: InventoryHost, files: list[Path]) -> str:
    if any(LAB_KNOWN_HOSTS_MARK in str(f) for f in files):
        return "for a lab host, `lab/labctl up` writes its keys there (from the host's own disk)"
    port = f" -p {host.port}" if host.port != 22 else ""
    return (
        f"check the key out of band (on the host: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`),"
        f" then accept it: `ssh-keyscan{port} -H {host.address} >> {files[0]}`"
    )


def unknown_message(host: InventoryHost, files: list[Path], offered) -> str:
    return (
        f"{host.name} ({host.address}): host key refused: {known_host_name(host.address, host.port)} "
        f"is not in {_files_text(files)} (fab checks host keys like Ansible's host_key_checking; "
        f"it offered {describe(offered)}). To accept it: {_how_to_accept(host, files)}"
    )


def changed_message(host: InventoryHost, files: list[Path], offered, expected) -> str:
    name = known_host_name(host.address, host.port)
    return (
        f"{host.name} ({host.address}): host key refused: it CHANGED. {_files_text(files)} "
        f"knows {describe(expected)}, the host offered {describe(offered)}: the host was recreated "
        f"or something is in the middle. If you know it was recreated: `ssh-keygen -R '{name}' -f "
        f"{files[0]}`, then {_how_to_accept(host, files)}"
    )


class RejectUnknownHostKey:
    """paramiko's RejectPolicy, raising UnknownHostKey with fab's message."""

    def __init__(self, host: InventoryHost, files: list[Path]):
        self.host = host
        self.files = files

    def missing_host_key(self, client, hostname, key) -> None:
        raise UnknownHostKey(unknown_message(self.host, self.files, key))


def check_host_keys(client, host: InventoryHost, files: list[Path]) -> None:
    """Have a paramiko SSHClient refuse any key but the ones `files` know for the host (a file
    that does not exist knows none)."""
    for path in files:
        if path.is_file():
            client.load_system_host_keys(str(path))
    client.set_missing_host_key_policy(RejectUnknownHostKey(host, files))
