"""`lab/labctl status`: what is up, in words, and the command that fixes what is not.

The *_line functions only format (unit-tested); `status` looks at the machine and prints them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from lab import base, cgroups, hosts, network
from lab.locallab import LocalLab
from lab.plan import (
    ACNG_PORT,
    BRIDGE,
    BRIDGE_ADDRESS,
    DEFAULT_PROFILE,
    DEFAULT_RELEASE,
    PREFIX_LEN,
    RELEASES,
    LabHost,
)

FIX = "`lab/labctl up` fixes it"
SSH_NO_ANSWER = 255  # ssh's own exit status when it cannot connect or log in


def fix_for(profile: str, release: str = DEFAULT_RELEASE) -> str:
    """What fixes a part of the lab that is not up: `up` with the profile and release that are up."""
    options = "".join(
        [
            f" --profile {profile}" if profile != DEFAULT_PROFILE else "",
            f" --release {release}" if release != DEFAULT_RELEASE else "",
        ]
    )
    return FIX if not options else f"`lab/labctl up{options}` fixes it"


def profile_line(profile: str, hosts: list[LabHost], release: str = DEFAULT_RELEASE) -> str:
    return (
        f"profile: {profile} ({len(hosts)} hosts: {', '.join(h.name for h in hosts)}); "
        f"release: {release} ({RELEASES[release]})"
    )


def bridge_line(up: bool, fix: str = FIX) -> str:
    return f"bridge {BRIDGE} {BRIDGE_ADDRESS}/{PREFIX_LEN}: " + ("up" if up else f"down; {fix}")


def acng_line(pid: int | None, answers: bool, fix: str = FIX) -> str:
    head = f"apt-cacher-ng {BRIDGE_ADDRESS}:{ACNG_PORT}: "
    if pid and answers:
        return head + f"running (pid {pid})"
    if pid:
        return head + f"running (pid {pid}) but not answering on port {ACNG_PORT}; {fix}"
    if answers:
        return head + f"stopped, and something else answers on port {ACNG_PORT}; {fix}"
    return head + f"stopped; {fix}"


def base_line(path: Path, built: bool) -> str:
    return f"base: {path} " + ("(cached)" if built else "(not built yet; `lab/labctl up` builds it)")


def host_line(
    h: LabHost, pid: int | None, systemd: str | None, cpus: str, console: Path, fix: str = FIX
) -> str:
    """One host; `systemd` is the host's `systemctl is-system-running`, None when SSH does not answer."""
    head = f"{h.name:8} {h.address:12} "
    if not pid:
        return head + f"stopped; {fix}"
    if systemd is None:
        ssh = f"ssh: no answer (booting? see {console})"
    else:
        ssh = f"ssh: answers  systemd: {systemd}"
    return head + f"running (pid {pid})  {ssh}  cpus: {cpus}"


def host_up(pid: int | None, systemd: str | None) -> bool:
    return bool(pid) and systemd == "running"


def verdict_line(up: bool, fix: str = FIX) -> str:
    return "lab: up" if up else f"lab: not (fully) up; {fix}"


def systemd_state(lab: LocalLab, h: LabHost) -> str | None:
    """The host's systemd state over SSH ('running', 'degraded', ...), None if SSH does not answer."""
    try:
        p = hosts.ssh(lab, h, "systemctl", "is-system-running", timeout=10)
    except subprocess.TimeoutExpired:
        return None
    if p.returncode == SSH_NO_ANSWER:
        return None
    return (p.stdout or "").strip() or f"unknown (exit {p.returncode})"


def status(lab: LocalLab) -> int:
    """Print the lab's state; 0 only if the bridge, apt-cacher-ng and every host (of the profile
    that is up, else the default one) are up."""
    fix = fix_for(lab.profile, lab.release)
    print(profile_line(lab.profile, lab.hosts, lab.release))
    bridge = network.bridge_up(lab)
    print(bridge_line(bridge, fix))
    apid = network.acng_pid(lab)
    answers = network.acng_answers() if bridge else False
    print(acng_line(apid, answers, fix))
    path = base.base_path(lab)
    print(base_line(path, base.is_built(path)))
    ok = bridge and bool(apid and answers)
    for h in lab.hosts:
        pid = hosts.host_pid(lab, h)
        state = systemd_state(lab, h) if pid else None
        cpus = cgroups.cpuset_of(pid) if pid else "-"
        print(host_line(h, pid, state, cpus, lab.host_dir(h) / "console.log", fix))
        ok &= host_up(pid, state)
    print(verdict_line(ok, fix))
    return 0 if ok else 1
