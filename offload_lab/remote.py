"""SSH to the lab hosts through Fabric: one cached Connection per host, plus helpers the sweep uses
(run a command, write/read a small file, CPU counters, settings files)."""

from __future__ import annotations

import io
import re
import shlex
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .inventory import Host

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

    def __init__(self, host: Host, connect_timeout: int = 10):
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
# CPU use over a step: counters read before and after it.
# Inside a container /proc/stat counts the whole machine, so there the host's own cgroup is read
# (cgroup v2 `cpu.stat` usage_usec, against uptime x its CPUs); on a VM /proc/stat is the host.


def parse_cpu(text: str) -> dict[str, Any]:
    """CPU_COMMAND's output -> {"busy": ticks, "total": ticks, "cpus": n} (ticks of one source),
    plus "cpu_list" (the CPUs the host may run on, e.g. "1" when pinned) when it was printed."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) < 2:
        raise RemoteError(f"unexpected CPU counters: {text[:200]!r}")
    pinned = {"cpu_list": lines[2].strip()} if len(lines) > 2 else {}
    try:
        cpus = int(lines[1])
        fields = lines[0].split()
        if fields[0] == "cgroup":
            usage_us, uptime_s = int(fields[1]), float(fields[2])
            return {"busy": usage_us, "total": int(uptime_s * 1e6) * cpus, "cpus": cpus, **pinned}
        if fields[0] == "cpu":
            # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
            ticks = ([int(x) for x in fields[1:]] + [0] * 8)[:8]
            total = sum(ticks)
            return {"busy": total - ticks[3] - ticks[4], "total": total, "cpus": cpus, **pinned}
    except (ValueError, IndexError):
        pass
    raise RemoteError(f"unexpected CPU counters: {text[:200]!r}")


CPU_COMMAND = (
    "f=; if systemd-detect-virt --container --quiet 2>/dev/null; then"
    " for c in /sys/fs/cgroup/unified/cpu.stat /sys/fs/cgroup/cpu.stat;"
    ' do [ -r "$c" ] && { f=$c; break; }; done; fi;'
    ' if [ -n "$f" ]; then'
    ' echo "cgroup $(awk \'/^usage_usec/{print $2}\' "$f") $(cut -d" " -f1 /proc/uptime)";'
    " else head -1 /proc/stat; fi; nproc;"
    " awk '/^Cpus_allowed_list/{print $2}' /proc/self/status"
)


def cpu_pct(before: dict[str, int], after: dict[str, int]) -> float | None:
    total = after["total"] - before["total"]
    if total <= 0:
        return None
    return round(100.0 * (after["busy"] - before["busy"]) / total, 1)


class CpuSampler:
    """Reads CPU counters on several hosts at once (one thread per host)."""

    def __init__(self, remotes: dict[str, Remote]):
        self.remotes = remotes  # host name -> Remote

    def snapshot(self) -> dict[str, dict[str, int] | None]:
        def one(remote: Remote):
            try:
                return parse_cpu(remote.run(CPU_COMMAND, timeout=15).stdout)
            except RemoteError:
                return None

        if not self.remotes:
            return {}
        with ThreadPoolExecutor(max_workers=len(self.remotes)) as pool:
            futures = {name: pool.submit(one, r) for name, r in self.remotes.items()}
            return {name: f.result() for name, f in futures.items()}


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
