"""CPU pinning and tracking of the hosts with cgroups (v1 hybrid layout, as on Debian 12 here).

Each host's launcher (systemd-nspawn) starts in cgroups of its own named after the machine: the
tracking hierarchies, so `--keep-unit` hosts do not collide and `down` finds every process of a
host; and, when pinned, a cpuset that root inside the host cannot widen.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from lab.plan import LabHost, cpu_split, parse_cpu_list

CGROUP_ROOT = Path("/sys/fs/cgroup")
# hierarchies a host's launcher is moved into (hybrid layout: systemd v1 + unified v2)
CGROUP_TRACKING = ("systemd", "unified")


def host_cpus() -> list[int]:
    """The CPUs the controller gives the lab (its root cpuset, else this process's affinity)."""
    try:
        return parse_cpu_list((CGROUP_ROOT / "cpuset" / "cpuset.effective_cpus").read_text())
    except OSError:
        return sorted(os.sched_getaffinity(0))


def cpu_plan(hosts: list[LabHost]) -> dict[str, str] | None:
    """Host name -> its cpu list (lab.plan.cpu_split of this machine's CPUs); None: do not pin."""
    return cpu_split(host_cpus(), [h.name for h in hosts])


def cgroup_dirs(h: LabHost) -> list[Path]:
    return [CGROUP_ROOT / hier / h.machine for hier in (*CGROUP_TRACKING, "cpuset")]


def prepare_cgroups(h: LabHost, cpus: str | None) -> list[Path]:
    """Fresh cgroups for the launcher: its own tracking cgroups (so that --keep-unit hosts do not
    collide) and, when pinned, a cpuset that root inside the host cannot widen.

    Returns the cgroup.procs files the launcher writes its pid to."""
    remove_cgroups(h)
    targets = []
    for hier in CGROUP_TRACKING:
        d = CGROUP_ROOT / hier / h.machine
        d.mkdir(exist_ok=True)
        targets.append(d / "cgroup.procs")
    if cpus is not None:
        d = CGROUP_ROOT / "cpuset" / h.machine
        d.mkdir(exist_ok=True)
        (d / "cpuset.cpus").write_text(cpus)
        (d / "cpuset.mems").write_text((CGROUP_ROOT / "cpuset" / "cpuset.mems").read_text().strip())
        targets.append(d / "cgroup.procs")
    return targets


def remove_cgroups(h: LabHost) -> None:
    """Remove the host's cgroups, deepest first (they must be empty)."""
    for top in cgroup_dirs(h):
        if not top.exists():
            continue
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            d.rmdir()
        top.rmdir()


def cgroup_pids(h: LabHost) -> set[int]:
    """Every process in the host's cgroups (only ever processes of this host)."""
    pids: set[int] = set()
    for top in cgroup_dirs(h):
        if top.exists():
            for procs in top.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    pids.update(int(x) for x in procs.read_text().split())
    return pids


def cpuset_of(pid: int) -> str:
    """'0-1 (not pinned)', '1 (cpuset /offlab-loadgen)', or '?' if it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, ctrl, path = line.split(":", 2)
            if "cpuset" in ctrl.split(","):
                cpus = (
                    (CGROUP_ROOT / "cpuset" / path.lstrip("/") / "cpuset.effective_cpus").read_text().strip()
                )
                return f"{cpus} (cpuset {path})" if path != "/" else f"{cpus} (not pinned)"
    except OSError:
        pass
    return "?"
