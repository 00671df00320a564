"""SSH to the lab hosts through Fabric: one cached Connection per host, plus helpers the sweep uses
(run a command, write/read a small file, each as root where Ansible uses `become`; settings files).

Every connection checks the host's key against its known_hosts (offload_lab/hosts/host_keys.py), sends
keepalives, and every call has a timeout: a host that vanishes mid-sweep fails the call instead of
hanging it."""

from __future__ import annotations

import io
import re
import shlex
import threading
import time
from dataclasses import dataclass
from typing import Any

from .host_keys import HostKeyError, changed_message, check_host_keys, known_hosts_files
from .inventory import InventoryHost

KEEPALIVE_S = 15  # SSH keepalive interval: a dead peer or path is noticed, idle NATs keep the flow
DEFAULT_TIMEOUT_S = 60.0  # a command given no timeout of its own
NO_EXIT_STATUS = -1  # what invoke reports for a channel closed without one
SFTP_TIMEOUT_S = 60.0  # an upload or download that stalls this long fails
# opening the connection: TCP (connect_timeout), the server's banner, authentication, a channel
BANNER_TIMEOUT_S = AUTH_TIMEOUT_S = CHANNEL_TIMEOUT_S = 30

SECRET_KEY_RE = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)
URL_PASSWORD_RE = re.compile(r"(\w+://[^:/@\s]+:)([^@\s]*)(@)")
SUDO_CHECK = "sudo -n true"
MISSING_EXIT = 66  # read_text: the file does not exist (cat itself exits 1 on any error)


class RemoteError(RuntimeError):
    pass


class HostKeyRefused(RemoteError):
    """The host's SSH key is unknown or changed (offload_lab/hosts/host_keys.py): nothing was sent."""


@dataclass(frozen=True)
class Result:
    stdout: str
    stderr: str
    exited: int

    @property
    def ok(self) -> bool:
        return self.exited == 0


class Remote:
    """Runs commands on one host. Thread-safe enough for the sweep: commands on one host come from
    one thread at a time, except `fresh()` which opens a separate connection (for stopping k6).

    `sudo=True` runs a command as root, where Ansible's playbooks use `become`: directly when the
    login is root, else through `sudo -n` (never a prompt). Whether sudo works is checked once per
    connection; when it does not, RemoteError says so instead of the command failing oddly."""

    def __init__(self, host: InventoryHost, connect_timeout: int = 10):
        self.host = host
        self.connect_timeout = connect_timeout
        self.known_hosts = known_hosts_files(host)
        self._conn = None
        self._lock = threading.Lock()
        self._sudo_checked = False
        self._keepalive_on = None  # the transport keepalives were set on (a reconnect makes another)
        self._sftp_timed = None  # the SFTP client whose channel has its timeout

    def _connection(self):
        from fabric import Config, Connection

        kwargs: dict[str, Any] = {
            "allow_agent": False,
            "look_for_keys": self.host.key_file is None,
            "banner_timeout": BANNER_TIMEOUT_S,
            "auth_timeout": AUTH_TIMEOUT_S,
            "channel_timeout": CHANNEL_TIMEOUT_S,
        }
        if self.host.key_file:
            kwargs["key_filename"] = [self.host.key_file]
        config = Config(overrides={"load_ssh_configs": False, "run": {"hide": True, "warn": True}})
        conn = Connection(
            self.host.address,
            user=self.host.user,
            port=self.host.port,
            connect_timeout=self.connect_timeout,
            connect_kwargs=kwargs,
            config=config,
        )
        check_host_keys(conn.client, self.host, self.known_hosts)  # instead of Fabric's AutoAddPolicy
        return conn

    def _open(self):
        """The connection, open (Fabric would open it lazily), with keepalives on its transport.
        A host key that is not the known one raises HostKeyRefused."""
        from paramiko import BadHostKeyException

        conn = self.conn
        try:
            conn.open()
        except HostKeyError as exc:  # unknown: our policy's own message
            self._forget(conn)
            raise HostKeyRefused(str(exc)) from None
        except BadHostKeyException as exc:  # changed: paramiko checks it before any policy
            self._forget(conn)
            message = changed_message(self.host, self.known_hosts, exc.key, exc.expected_key)
            raise HostKeyRefused(message) from None
        transport = conn.transport
        if transport is not None and transport is not self._keepalive_on:
            transport.set_keepalive(KEEPALIVE_S)
            self._keepalive_on = transport
        return conn

    def _forget(self, conn) -> None:
        """Close and drop a refused connection: the next try reads known_hosts again."""
        with self._lock:
            if self._conn is conn:
                self._conn = None
        conn.close()

    def _sftp_ready(self):
        """The open connection, its SFTP channel with a timeout (SFTP calls take none of their own)."""
        conn = self._open()
        sftp = conn.sftp()
        if sftp is not self._sftp_timed:
            sftp.get_channel().settimeout(SFTP_TIMEOUT_S)
            self._sftp_timed = sftp
        return conn

    @property
    def conn(self):
        with self._lock:
            if self._conn is None:
                self._conn = self._connection()
            return self._conn

    @property
    def where(self) -> str:
        return f"{self.host.name} ({self.host.address})"

    @property
    def login_is_root(self) -> bool:
        return self.host.user == "root"

    def fresh(self) -> Remote:
        return Remote(self.host, self.connect_timeout)

    def _exec(self, command: str, timeout: float | None) -> Result:
        timeout = DEFAULT_TIMEOUT_S if timeout is None else timeout
        started = time.monotonic()
        try:
            r = self._open().run(command, hide=True, warn=True, in_stream=False, timeout=timeout)
        except HostKeyRefused:
            raise
        except Exception as exc:  # socket errors, auth failures, timeouts
            raise RemoteError(f"{self.where}: {command!r}: {exc}") from exc
        if r.exited == NO_EXIT_STATUS and time.monotonic() - started >= timeout:
            # the channel closed without an exit status as the timeout stopped it: invoke then
            # returns instead of raising its CommandTimedOut
            raise RemoteError(f"{self.where}: {command!r}: did not complete within {timeout:g} s")
        return Result(r.stdout, r.stderr, r.exited)

    def _check_sudo(self) -> None:
        """Once per connection: `sudo -n true` must work, else RemoteError says what sudo said."""
        if self._sudo_checked:
            return
        r = self._exec(SUDO_CHECK, timeout=30)
        if not r.ok:
            said = (r.stderr or r.stdout).strip() or f"`{SUDO_CHECK}` exited {r.exited}"
            raise RemoteError(
                f"{self.where}: fab needs passwordless sudo for {self.host.user} "
                f"(as Ansible's become does): {said}"
            )
        self._sudo_checked = True

    def _as_root(self, command: str) -> str:
        """`command` as root: itself when the login is root, else `sudo -n sh -c COMMAND`."""
        if self.login_is_root:
            return command
        self._check_sudo()
        return f"sudo -n sh -c {shlex.quote(command)}"

    def run(
        self, command: str, check: bool = True, timeout: float | None = None, sudo: bool = False
    ) -> Result:
        """Run `command` (as root with sudo=True); with check, a non-zero exit raises RemoteError.
        It is stopped after `timeout` seconds (None: DEFAULT_TIMEOUT_S), which raises RemoteError."""
        full = self._as_root(command) if sudo else command
        result = self._exec(full, timeout)
        if check and not result.ok:
            said = (result.stderr or result.stdout).strip()[-500:]
            raise RemoteError(f"{self.where}: {full!r} exited {result.exited}: {said}")
        return result

    def put_text(self, text: str, path: str, mode: str | None = None, sudo: bool = False) -> None:
        """Write `text` to `path`. With sudo=True the file is root's (mode default 0644): a login
        that is not root uploads to a temporary file of its own and installs it with sudo."""
        if sudo and not self.login_is_root:
            self._put_as_root(text, path, mode or "0644")
            return
        self._upload(text, path)
        if mode:
            self.run(f"chmod {mode} {shlex.quote(path)}", sudo=sudo)

    def _upload(self, text: str, path: str) -> None:
        try:
            self._sftp_ready().put(io.BytesIO(text.encode()), remote=path)
        except HostKeyRefused:
            raise
        except Exception as exc:
            raise RemoteError(f"{self.where}: upload to {path}: {exc}") from exc

    def _put_as_root(self, text: str, path: str, mode: str) -> None:
        self._check_sudo()  # before anything is uploaded
        tmp = self.run("mktemp", timeout=30).stdout.strip()
        try:
            self._upload(text, tmp)
            self.run(f"install -m {mode} {shlex.quote(tmp)} {shlex.quote(path)}", sudo=True)
        finally:
            self.run(f"rm -f {shlex.quote(tmp)}", check=False, timeout=30)

    def read_text(self, path: str, missing_ok: bool = True, sudo: bool = False) -> str | None:
        """The file's text; None if it does not exist and missing_ok. Any other failure (a file
        the login may not read, say) raises RemoteError rather than passing for a missing file."""
        quoted = shlex.quote(path)
        r = self.run(
            f"if [ -e {quoted} ]; then cat {quoted}; else exit {MISSING_EXIT}; fi", check=False, sudo=sudo
        )
        if r.ok:
            return r.stdout
        if r.exited == MISSING_EXIT and missing_ok:
            return None
        reason = "no such file" if r.exited == MISSING_EXIT else r.stderr.strip()
        raise RemoteError(f"{self.where}: cannot read {path}: {reason}")

    def get_file(self, remote_path: str, local_path) -> None:
        """Download one file (SFTP) to local_path (a path; its folder must exist)."""
        try:
            self._sftp_ready().get(remote_path, local=str(local_path))
        except HostKeyRefused:
            raise
        except Exception as exc:  # missing file, permissions, socket errors, a stalled transfer
            raise RemoteError(f"{self.host.name}: download of {remote_path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None


# --------------------------------------------------------------------------------------------
# settings files


def parse_env_file(text: str | None) -> dict[str, str]:
    """KEY=VALUE lines (systemd EnvironmentFile style: comments, blank lines, optional quotes)."""
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key] = value
    return out


def mask_secrets(settings: dict[str, str]) -> dict[str, str]:
    """Hide passwords: in URLs (amqp://user:***@host) and in keys named like a secret."""
    out = {}
    for k, v in settings.items():
        if SECRET_KEY_RE.search(k):
            out[k] = "***"
        else:
            out[k] = URL_PASSWORD_RE.sub(r"\1***\3", v)
    return out


def format_env_file(settings: dict[str, str]) -> str:
    lines = ["# written by `fab sweep` for one step; removed when the sweep ends"]
    lines += [f"{k}={v}" for k, v in sorted(settings.items())]
    return "\n".join(lines) + "\n"
