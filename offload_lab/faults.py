"""Faults inside a step: what a spec may ask for (validated with the spec), and performing them
over SSH at their second of the step, each recorded with its timestamps in the step JSON.

A fault is `{action, at_s[, duration_s]}` in a series (k6/sweeps/README.md, "Faults"). Every
action runs as root on one host (sudo where Ansible uses become) and returns when the action is
done, not when the service is healthy again: recovery is what the step measures.
"""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from .checks import num_in

BROKER_UNIT = "rabbitmq-server"
CORE_UNIT = "offload-core"
GATEWAY_UNIT = "offload-gateway"
AMQP_PORT = 5672
NFT_TABLE = "offload_fault"  # the partition's own nftables table: deleting it heals everything
ACTION_TIMEOUT_S = 120


def _kill_then_start(unit: str) -> str:
    """SIGKILL every process of the unit, wait until systemd has seen it die, start it again."""
    u = shlex.quote(unit)
    return (
        f"systemctl kill --signal=SIGKILL {u}; "
        f"for i in $(seq 100); do systemctl is-active -q {u} || break; sleep 0.1; done; "
        f"systemctl reset-failed {u} 2>/dev/null; systemctl start {u}"
    )


def _kill_one_gateway_worker() -> str:
    """SIGKILL the oldest gunicorn worker (a child of the unit's main process); the arbiter forks
    a new one."""
    return (
        f"main=$(systemctl show -p MainPID --value {GATEWAY_UNIT}); "
        '[ "${main:-0}" -gt 0 ] || { echo "offload-gateway is not running" >&2; exit 1; }; '
        'worker=$(pgrep -o -P "$main"); '
        '[ -n "$worker" ] || { echo "offload-gateway has no worker" >&2; exit 1; }; '
        'kill -KILL "$worker" && echo "killed worker $worker"'
    )


def partition_command(peer: str, duration_s: float, port: int = AMQP_PORT) -> str:
    """nftables on the gateway host: drop its traffic to and from the broker's AMQP port. The
    host heals itself after `duration_s` (a transient systemd timer), so a partition ends even if
    the controller dies; the controller heals it too, at the same moment."""
    p = shlex.quote(peer)
    return (
        f"systemd-run --quiet --collect --on-active={duration_s:g}s --unit=offload-fault-heal "
        f"nft delete table inet {NFT_TABLE} && "
        f"nft add table inet {NFT_TABLE} && "
        f"nft 'add chain inet {NFT_TABLE} out {{ type filter hook output priority 0; }}' && "
        f"nft 'add chain inet {NFT_TABLE} in {{ type filter hook input priority 0; }}' && "
        f"nft add rule inet {NFT_TABLE} out ip daddr {p} tcp dport {port} drop && "
        f"nft add rule inet {NFT_TABLE} in ip saddr {p} tcp sport {port} drop"
    )


HEAL_COMMAND = (
    f"nft delete table inet {NFT_TABLE} 2>/dev/null; "
    "systemctl stop offload-fault-heal.timer 2>/dev/null; true"
)


@dataclass(frozen=True)
class FaultAction:
    """What an action does: on which group's first host, which command (given the broker's
    address), and whether it needs a duration (then `heal` ends it)."""

    group: str
    command: Callable[[str, float | None], str]  # (broker address, duration_s) -> shell text
    needs_duration: bool = False
    heal: str | None = None


ACTIONS: dict[str, FaultAction] = {
    "broker_restart": FaultAction("broker", lambda *_: f"systemctl restart {BROKER_UNIT}"),
    "broker_kill": FaultAction("broker", lambda *_: _kill_then_start(BROKER_UNIT)),
    "core_kill": FaultAction("core", lambda *_: f"systemctl kill --signal=SIGKILL {CORE_UNIT}"),
    "core_restart": FaultAction("core", lambda *_: f"systemctl restart {CORE_UNIT}"),
    "gateway_worker_kill": FaultAction("gateway", lambda *_: _kill_one_gateway_worker()),
    "partition": FaultAction("gateway", partition_command, needs_duration=True, heal=HEAL_COMMAND),
}
FAULT_KEYS = ("action", "at_s", "duration_s")


@dataclass(frozen=True)
class FaultSpec:
    action: str
    at_s: float
    duration_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate_faults(problems: list[str], key: str, value: Any, step_duration_s: int | None) -> tuple:
    """The `faults:` list of a series; each fault must start within the step's load."""
    if not isinstance(value, list):
        problems.append(f"{key}: must be a list of {{action, at_s, duration_s}}, got {value!r}")
        return ()
    out = []
    for i, item in enumerate(value):
        k = f"{key}[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{k}: must be a mapping with action, at_s (and duration_s), got {item!r}")
            continue
        for unknown in sorted(set(item) - set(FAULT_KEYS)):
            problems.append(f"{k}.{unknown}: unknown key (known: {', '.join(FAULT_KEYS)})")
        action = item.get("action")
        if action not in ACTIONS:
            problems.append(f"{k}.action: must be one of {', '.join(ACTIONS)}, got {action!r}")
            continue
        limit = float(step_duration_s) if step_duration_s else 3600.0
        at_s = num_in(problems, f"{k}.at_s", item.get("at_s"), 0, limit)
        if at_s is not None and step_duration_s and at_s >= step_duration_s:
            problems.append(f"{k}.at_s: must be within the step's {step_duration_s} s of load, got {at_s}")
            at_s = None
        duration = item.get("duration_s")
        if ACTIONS[action].needs_duration:
            duration = num_in(problems, f"{k}.duration_s", duration, 0.1, limit)
        elif duration is not None:
            problems.append(f"{k}.duration_s: only partition takes a duration")
            duration = None
        if at_s is not None and (duration is not None or not ACTIONS[action].needs_duration):
            out.append(FaultSpec(action=action, at_s=float(at_s), duration_s=duration))
    return tuple(sorted(out, key=lambda f: f.at_s))


# --------------------------------------------------------------------------------------------
# performing them


class RemoteLike(Protocol):
    def run(self, command: str, check: bool = True, timeout: float | None = None, sudo: bool = False): ...


class FaultRunner:
    """Performs a step's faults on a thread, each at `load start + at_s`; `join()` returns the
    records. A failed action is recorded with its error, never raised: the step goes on."""

    def __init__(
        self,
        faults: tuple[FaultSpec, ...],
        remotes: dict[str, RemoteLike],  # group -> the remote of its first host
        broker_address: str,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.faults = faults
        self.remotes = remotes
        self.broker_address = broker_address
        self.clock = clock
        self.sleep = sleep
        self.records: list[dict[str, Any]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self, load_started_unix_s: float) -> None:
        if not self.faults:
            return
        self._thread = threading.Thread(target=self._run, args=(load_started_unix_s,), daemon=True)
        self._thread.start()

    def _wait_until(self, t_unix_s: float) -> bool:
        while not self._stop.is_set():
            left = t_unix_s - self.clock()
            if left <= 0:
                return True
            self._stop.wait(min(left, 0.2))
        return False

    def _run(self, t0: float) -> None:
        for fault in self.faults:
            if not self._wait_until(t0 + fault.at_s):
                return
            self.records.append(self._perform(fault, t0))

    def _perform(self, fault: FaultSpec, t0: float) -> dict[str, Any]:
        action = ACTIONS[fault.action]
        remote = self.remotes[action.group]
        record: dict[str, Any] = {**fault.as_dict(), "host": getattr(remote, "host", None)}
        record["host"] = getattr(record["host"], "name", record["host"])
        record["started_unix_s"] = round(self.clock(), 3)
        command = action.command(self.broker_address, fault.duration_s)
        record["ok"], record["error"] = self._run_command(remote, command)
        record["done_unix_s"] = round(self.clock(), 3)
        if action.heal:
            self._wait_until(record["started_unix_s"] + (fault.duration_s or 0))
            ok, error = self._run_command(remote, action.heal)
            record["healed_unix_s"] = round(self.clock(), 3)
            if not ok:
                record["ok"], record["error"] = False, f"heal: {error}"
        record["offset_s"] = round(record["started_unix_s"] - t0, 3)
        return record

    @staticmethod
    def _run_command(remote: RemoteLike, command: str) -> tuple[bool, str | None]:
        try:
            r = remote.run(command, check=False, timeout=ACTION_TIMEOUT_S, sudo=True)
        except Exception as exc:  # SSH down, timeout: the record says so
            return False, str(exc)
        if getattr(r, "exited", 0) != 0:
            return False, f"exited {r.exited}: {(r.stderr or r.stdout).strip()[-300:]}"
        return True, None

    def join(self, timeout_s: float = ACTION_TIMEOUT_S * 2) -> list[dict[str, Any]]:
        if self._thread is not None:
            self._thread.join(timeout_s)
        return list(self.records)

    def abort(self) -> None:
        """Stop waiting for later faults and heal a partition that may be in place."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(ACTION_TIMEOUT_S)
        for fault in self.faults:
            action = ACTIONS[fault.action]
            if action.heal:
                self._run_command(self.remotes[action.group], action.heal)
