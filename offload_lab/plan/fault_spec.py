"""Faults a sweep spec may ask for inside a step: the actions, where each acts, and the check of
a series' `faults:` list; offload_lab.services.faults performs them.

A fault is `{action, at_s[, duration_s][, host]}` in a series (k6/sweeps/README.md, "Faults").
`host` picks the host of a group of several (a broker node of a cluster, say): its position in
the inventory group (1 = the first) or its inventory name; without it, the group's first host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .checks import num_in


@dataclass(frozen=True)
class FaultAction:
    """Where an action acts: on a host of `group`; whether it lasts (`needs_duration`: it is
    healed after it). `picks` is the group a fault's `host` chooses from: the group itself, or for
    a partition the broker the gateway is cut from."""

    group: str
    needs_duration: bool = False
    picks: str | None = None

    @property
    def host_group(self) -> str:
        return self.picks or self.group


ACTIONS: dict[str, FaultAction] = {
    "broker_restart": FaultAction("broker"),
    "broker_kill": FaultAction("broker"),
    "core_kill": FaultAction("core"),
    "core_restart": FaultAction("core"),
    "gateway_worker_kill": FaultAction("gateway"),
    "partition": FaultAction("gateway", needs_duration=True, picks="broker"),
}
FAULT_KEYS = ("action", "at_s", "duration_s", "host")

HostChoice = int | str  # a position in the inventory group (1 = first) or an inventory host name


@dataclass(frozen=True)
class FaultSpec:
    action: str
    at_s: float
    duration_s: float | None = None
    host: HostChoice | None = None  # None: the first host of the group

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.host is None:  # as before there was a choice
            del out["host"]
        return out


def pick_host(choice: HostChoice, names: Sequence[str]) -> int | None:
    """The index in `names` (a group's hosts in inventory order) that `choice` picks, or None."""
    if isinstance(choice, int):
        return choice - 1 if 1 <= choice <= len(names) else None
    return names.index(choice) if choice in names else None


def fault_host_problems(faults: Sequence[FaultSpec], groups: Mapping[str, Sequence[str]]) -> list[str]:
    """Each fault's `host` checked against the inventory (group -> host names in order), before
    any load: [] when every one names a host of its group."""
    problems = []
    for fault in faults:
        if fault.host is None:
            continue
        group = ACTIONS[fault.action].host_group
        names = list(groups.get(group, ()))
        if pick_host(fault.host, names) is None:
            problems.append(
                f"fault {fault.action} at {fault.at_s:g} s: host {fault.host!r} is not one of the "
                f"{group} group's hosts (1..{len(names)} or {', '.join(names) or 'none'})"
            )
    return problems


def _valid_host_choice(problems: list[str], key: str, value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return True
    if isinstance(value, str) and value.strip():
        return True
    problems.append(
        f"{key}: a position in the inventory group (1 = the first host) or a host name, got {value!r}"
    )
    return False


def validate_faults(problems: list[str], key: str, value: Any, step_duration_s: int | None) -> tuple:
    """The `faults:` list of a series; each fault must start within the step's load."""
    if not isinstance(value, list):
        problems.append(f"{key}: must be a list of {{action, at_s, duration_s, host}}, got {value!r}")
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
        host = item.get("host")
        if host is not None and not _valid_host_choice(problems, f"{k}.host", host):
            continue
        if at_s is not None and (duration is not None or not ACTIONS[action].needs_duration):
            out.append(FaultSpec(action=action, at_s=float(at_s), duration_s=duration, host=host))
    return tuple(sorted(out, key=lambda f: f.at_s))
