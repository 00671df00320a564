"""SSH to the lab hosts through Fabric: one cached Connection per host, plus helpers the sweep uses
(run a command, write/read a small file, CPU counters, settings files)."""

from __future__ import annotations

import io
import re
import shlex
import threading
from dataclasses import dataclass
from typing import Any

from .inventory import InventoryHost

SECRET_KEY_RE = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)
URL_PASSWORD_RE = re.compile(r"(\w+://[^:/@\s]+:)([^@\s]*)(@)")


class RemoteError(RuntimeError):
    pass


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
    one thread at a time, except `fresh()` which opens a separate connection (for stopping k6)."""

    def __init__(self, host: InventoryHost, connect_timeout: int = 10):
        self.host = host
        self.connect_timeout = connect_timeout
        self._conn = None
        self._lock = threading.Lock()

    def _connection(self):
        from fabric import Config, Connection

        kwargs: dict[str, Any] = {"allow_agent": False, "look_for_keys": self.host.key_file is None}
        if self.host.key_file:
            kwargs["key_filename"] = [self.host.key_file]
        config = Config(overrides={"load_ssh_configs": False, "run": {"hide": True, "warn": True}})
        return Connection(
            self.host.address,
            user=self.host.user,
            port=self.host.port,
            connect_timeout=self.connect_timeout,
            connect_kwargs=kwargs,
            config=config,
        )

    @property
    def conn(self):
        with self._lock:
            if self._conn is None:
                self._conn = self._connection()
            return self._conn

    def fresh(self) -> Remote:
        return Remote(self.host, self.connect_timeout)

    def run(self, command: str, check: bool = True, timeout: float | None = None) -> Result:
        try:
            r = self.conn.run(command, hide=True, warn=True, in_stream=False, timeout=timeout)
        except Exception as exc:  # socket errors, auth failures, timeouts
            raise RemoteError(f"{self.host.name} ({self.host.address}): {command!r}: {exc}") from exc
        result = Result(r.stdout, r.stderr, r.exited)
        if check and not result.ok:
            raise RemoteError(
                f"{self.host.name} ({self.host.address}): {command!r} exited {r.exited}: "
                f"{(r.stderr or r.stdout).strip()[-500:]}"
            )
        return result

    def put_text(self, text: str, path: str, mode: str | None = None) -> None:
        try:
            self.conn.put(io.BytesIO(text.encode()), remote=path)
        except Exception as exc:
            raise RemoteError(f"{self.host.name}: upload to {path}: {exc}") from exc
        if mode:
            self.run(f"chmod {mode} {shlex.quote(path)}")

    def read_text(self, path: str, missing_ok: bool = True) -> str | None:
        r = self.run(f"cat {shlex.quote(path)}", check=False)
        if r.ok:
            return r.stdout
        if missing_ok:
            return None
        raise RemoteError(f"{self.host.name}: cannot read {path}: {r.stderr.strip()}")

    def get_file(self, remote_path: str, local_path) -> None:
        """Download one file (SFTP) to local_path (a path; its folder must exist)."""
        try:
            self.conn.get(remote_path, local=str(local_path))
        except Exception as exc:  # missing file, permissions, socket errors
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
