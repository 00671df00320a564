"""Faults inside a step, performed over SSH at their second of the step, each recorded with its
timestamps in the step JSON; what a spec may ask for is offload_lab.plan.fault_spec.

Every action runs as root on one host (sudo where Ansible uses become) and returns when the
action is done, not when the service is healthy again: recovery is what the step measures.
"""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..hosts.lab_names import BROKER_UNIT, CORE_UNIT, GATEWAY_UNIT
from ..plan.fault_spec import ACTIONS, FaultSpec, pick_host

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


def partition_command(peer: str, duration_s: float, port: int) -> str:
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
class FaultCommand:
    """What an action runs on its host: `run` gives the shell text (from the broker's address, the
    fault's duration and the broker's AMQP port); `heal` ends an action that lasts
    (offload_lab.plan.fault_spec says which)."""

    run: Callable[[str, float | None, int], str]  # (broker address, duration_s, AMQP port) -> shell
    heal: str | None = None


COMMANDS: dict[str, FaultCommand] = {
    "broker_restart": FaultCommand(lambda *_: f"systemctl restart {BROKER_UNIT}"),
    "broker_kill": FaultCommand(lambda *_: _kill_then_start(BROKER_UNIT)),
    "core_kill": FaultCommand(lambda *_: f"systemctl kill --signal=SIGKILL {CORE_UNIT}"),
    "core_restart": FaultCommand(lambda *_: f"systemctl restart {CORE_UNIT}"),
    "gateway_worker_kill": FaultCommand(lambda *_: _kill_one_gateway_worker()),
    "partition": FaultCommand(partition_command, heal=HEAL_COMMAND),
}


class RemoteLike(Protocol):
    def run(self, command: str, check: bool = True, timeout: float | None = None, sudo: bool = False): ...


class FaultRunner:
    """Performs a step's faults on a thread, each at `load start + at_s`; `join()` returns the
    records. A failed action is recorded with its error, never raised: the step goes on."""

    def __init__(
        self,
        faults: tuple[FaultSpec, ...],
        # group -> the remotes of its hosts in inventory order (or only the first host's remote)
        remotes: Mapping[str, RemoteLike | Sequence[RemoteLike]],
        broker_address: str,  # the first broker's, the partition's peer unless `host` picks one
        amqp_ports: Mapping[str, int],  # broker address -> its AMQP port, which a partition drops
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.faults = faults
        self.groups = {g: list(r) if isinstance(r, list | tuple) else [r] for g, r in remotes.items()}
        self.remotes = {g: rs[0] for g, rs in self.groups.items() if rs}  # each group's first host
        self.broker_address = broker_address
        self.amqp_ports = amqp_ports
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
        action, command = ACTIONS[fault.action], COMMANDS[fault.action]
        remote, peer = self.remotes[action.group], self.broker_address
        record: dict[str, Any] = fault.as_dict()
        if fault.host is not None:
            record["host_choice"] = record.pop("host")
            choices = self.groups.get(action.host_group, [])
            index = pick_host(fault.host, [_host_name(r) for r in choices])
            if index is None:  # fault_host_problems refuses such a spec before any load
                now = round(self.clock(), 3)
                error = f"no {action.host_group} host {fault.host!r}"
                return {**record, "host": None, "ok": False, "error": error, "started_unix_s": now,
                        "done_unix_s": now, "offset_s": round(now - t0, 3)}  # fmt: skip
            if action.picks:
                peer = choices[index].host.address
                record["peer_host"] = _host_name(choices[index])
            else:
                remote = choices[index]
        record["host"] = _host_name(remote)
        if action.picks:
            record["peer"] = peer
        record["started_unix_s"] = round(self.clock(), 3)
        record["ok"], record["error"] = self._run_command(
            remote, command.run(peer, fault.duration_s, self.amqp_ports[peer])
        )
        record["done_unix_s"] = round(self.clock(), 3)
        if command.heal:
            self._wait_until(record["started_unix_s"] + (fault.duration_s or 0))
            ok, error = self._run_command(remote, command.heal)
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
            heal = COMMANDS[fault.action].heal
            if heal:
                self._run_command(self.remotes[ACTIONS[fault.action].group], heal)


def _host_name(remote: RemoteLike) -> str | None:
    host = getattr(remote, "host", None)
    return getattr(host, "name", host)
