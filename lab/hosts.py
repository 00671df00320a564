"""The hosts: an overlay on the base per host, booted by systemd-nspawn on the bridge, reached by SSH.

A host's files are in .lab/hosts/NAME/ (LocalLab.host_dir): upper, work, merged (the overlay),
console.log (the container's console), pid (the launcher's), cpus, base (which base it is made from),
configured (its hostname, network and SSH key are written).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from lab import cgroups, processes
from lab.locallab import LocalLab, StepFailed
from lab.plan import (
    BRIDGE,
    HOST_PUBLIC_KEYS_GLOB,
    LOGIN_UID,
    LOGIN_USER,
    LabHost,
    etc_hosts_text,
    host_network_text,
    known_hosts_text,
    ssh_config_text,
)

NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")
BOOT_TIMEOUT_S = 180
STOP_TIMEOUT_S = 20
SSH_CONNECT_TIMEOUT_S = 3


# ---- ssh


def ensure_key(lab: LocalLab) -> None:
    """The lab's SSH key (made once) and .lab/ssh/config."""
    lab.ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not lab.key.exists():
        lab.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "offload-lab", "-f", str(lab.key)])
    config = lab.ssh_dir / "config"
    config.write_text(ssh_config_text(lab.hosts, lab.key, lab.known_hosts, config))


def ssh_cmd(lab: LocalLab, h: LabHost, *remote: str) -> list[str]:
    """The ssh command line that runs `remote` on the host as LOGIN_USER with the lab's key (root
    may not log in: prefix `sudo -n` where root is needed)."""
    return [
        "ssh", "-i", str(lab.key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "-o", f"UserKnownHostsFile={lab.known_hosts}", "-o", "StrictHostKeyChecking=yes",
        "-o", f"ConnectTimeout={SSH_CONNECT_TIMEOUT_S}", "-o", "LogLevel=ERROR",
        f"{LOGIN_USER}@{h.address}", *remote,
    ]  # fmt: skip


def ssh(lab: LocalLab, h: LabHost, *remote: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run `remote` on the host; never raises on its exit status (ssh itself exits 255)."""
    return lab.run(ssh_cmd(lab, h, *remote), check=False, timeout=timeout, stdin=subprocess.DEVNULL)


# ---- finding a host's launcher


def nspawn_pids(h: LabHost) -> list[int]:
    """systemd-nspawn processes for this host, found by their command line."""
    return processes.pids_where(
        lambda args: args[0].endswith("systemd-nspawn") and f"--machine={h.machine}" in args
    )


def host_pid(lab: LocalLab, h: LabHost) -> int | None:
    """The host's systemd-nspawn pid (the one it was started with if still there), None if stopped."""
    try:
        pid = int((lab.host_dir(h) / "pid").read_text())
    except (OSError, ValueError):
        pid = None
    found = nspawn_pids(h)
    if pid and pid in found:
        return pid
    return found[0] if found else None


def is_mounted(path: Path) -> bool:
    p = str(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == p for line in f)


# ---- up


def ensure_overlay(lab: LocalLab, h: LabHost, base: Path) -> None:
    """Mount the host's overlay on `base` (recreated if made from another base) and configure it once."""
    d = lab.host_dir(h)
    if d.exists() and (d / "base").exists() and (d / "base").read_text().strip() != str(base):
        lab.log(f"    {h.name} was made from another base: recreating it")
        remove_host(lab, h)
    fresh = not (d / "upper").exists()
    for sub in ("upper", "work", "merged"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "base").write_text(str(base) + "\n")
    if not is_mounted(lab.merged(h)):
        opts = f"lowerdir={base},upperdir={d / 'upper'},workdir={d / 'work'}"
        lab.run(["mount", "-t", "overlay", f"offlab-{h.name}", "-o", opts, str(lab.merged(h))])
    if fresh or not (d / "configured").exists():
        configure_host(lab, h)
        (d / "configured").write_text("1\n")
    ensure_host_keys(lab, h)


def ensure_host_keys(lab: LocalLab, h: LabHost) -> None:
    """Make the host's SSH host keys in its own disk before it boots (only the missing ones: a host
    keeps its keys across restarts), so that labctl can trust them without asking the network."""
    lab.run(["ssh-keygen", "-A", "-f", str(lab.merged(h))])


def trust_host_keys(lab: LocalLab, h: LabHost) -> None:
    """Trust on creation: the lab's known_hosts holds exactly the public host keys found in the
    host's own filesystem (local and trusted), so SSH can check host keys strictly
    (StrictHostKeyChecking=yes; no key is ever accepted from the network)."""
    found = sorted(lab.merged(h).glob(HOST_PUBLIC_KEYS_GLOB))
    if not found:
        raise StepFailed(f"{h.name}: no SSH host keys in {lab.merged(h) / 'etc/ssh'}")
    existing = lab.known_hosts.read_text() if lab.known_hosts.exists() else ""
    text = known_hosts_text(existing, h.address, [p.read_text() for p in found])
    tmp = lab.known_hosts.with_name(lab.known_hosts.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o644)
    tmp.replace(lab.known_hosts)


def configure_host(lab: LocalLab, h: LabHost) -> None:
    """What makes a host itself: hostname, /etc/hosts, its static address, the lab's SSH key for
    LOGIN_USER (the user and its sudo are the base's)."""
    root = lab.merged(h)
    (root / "etc/hostname").write_text(h.name + "\n")
    (root / "etc/hosts").write_text(etc_hosts_text(lab.hosts, h.name))
    (root / "etc/systemd/network").mkdir(parents=True, exist_ok=True)
    (root / "etc/systemd/network/80-container-host0.network").write_text(host_network_text(h.address))
    ssh_dir = root / "home" / LOGIN_USER / ".ssh"
    ssh_dir.mkdir(exist_ok=True)  # its home comes with the base: a missing one is an error
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text(Path(str(lab.key) + ".pub").read_text())
    for path, mode in ((ssh_dir, 0o700), (authorized, 0o600)):
        path.chmod(mode)
        os.chown(path, LOGIN_UID, LOGIN_UID)


def start_host(lab: LocalLab, h: LabHost, cpus: str | None) -> None:
    """Boot the host with systemd-nspawn, detached, in its own cgroups (pinned to `cpus` unless None)."""
    for pid in nspawn_pids(h):
        raise StepFailed(f"a systemd-nspawn for {h.machine} is already running (pid {pid}); run down")
    shutil.rmtree(NSPAWN_PROPAGATE / h.machine, ignore_errors=True)
    targets = cgroups.prepare_cgroups(h, cpus)
    d = lab.host_dir(h)
    cmd = [
        "systemd-nspawn", "--boot", f"--directory={lab.merged(h)}", f"--machine={h.machine}",
        f"--hostname={h.name}", f"--network-bridge={BRIDGE}", "--register=no", "--keep-unit",
        "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=read-only",
    ]  # fmt: skip

    def enter_cgroups():  # runs in the child between fork and exec
        os.setsid()
        for t in targets:
            with open(t, "w") as f:
                f.write(str(os.getpid()))

    with open(d / "console.log", "ab") as out:
        p = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=enter_cgroups,
            close_fds=True,
        )
    (d / "pid").write_text(str(p.pid))
    (d / "cpus").write_text((cpus or "") + "\n")
    time.sleep(0.3)
    if p.poll() is not None:
        raise StepFailed(f"systemd-nspawn exited {p.returncode} at once:\n{console_tail(lab, h)}")
    lab.log(f"    pid {p.pid}, cpus {cpus or 'all (not pinned)'}")


def console_tail(lab: LocalLab, h: LabHost, n: int = 30) -> str:
    try:
        return "\n".join((lab.host_dir(h) / "console.log").read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no console.log)"


def wait_host(lab: LocalLab, h: LabHost, quick: bool = False) -> None:
    """Wait until the host answers SSH and systemd says `running` (quick: say nothing if it does)."""
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    last = ""
    while True:
        if not host_pid(lab, h):
            raise StepFailed(f"{h.machine} stopped while booting; console:\n{console_tail(lab, h)}")
        p = ssh(lab, h, "true", timeout=15)
        if p.returncode == 0:
            break
        last = (p.stderr or "").strip()
        if time.monotonic() > deadline:
            raise StepFailed(
                f"no SSH on {h.address} after {BOOT_TIMEOUT_S} s: {last}\n{console_tail(lab, h)}"
            )
        time.sleep(0.5)
    remaining = max(10, deadline - time.monotonic())
    p = ssh(
        lab,
        h,
        "timeout",
        str(int(remaining)),
        "systemctl",
        "is-system-running",
        "--wait",
        timeout=remaining + 10,
    )
    state = (p.stdout or "").strip()
    if state == "running":
        if not quick:
            lab.log(f"    {h.name} ({h.address}): running")
        return
    failed = ssh(lab, h, "systemctl", "--failed", "--no-legend", "--plain").stdout
    raise StepFailed(f"{h.name}: systemd is '{state or p.returncode}', failed units:\n{failed}")


# ---- down


def stop_host(lab: LocalLab, h: LabHost) -> None:
    """Stop the host: its launcher halts it cleanly on SIGTERM; then nothing may be left in its cgroups."""
    pids = nspawn_pids(h)
    for pid in processes.terminate(pids, STOP_TIMEOUT_S):
        lab.log(f"    {h.machine}: pid {pid} did not stop in {STOP_TIMEOUT_S} s, SIGKILL")
    # anything left in the host's cgroups (only ever processes of this host)
    for _ in range(50):
        rest = [p for p in cgroups.cgroup_pids(h) if processes.alive(p)]
        if not rest:
            break
        processes.signal_each(rest, signal.SIGKILL)
        time.sleep(0.1)
    else:
        raise StepFailed(f"processes left in {h.machine}'s cgroups: {rest}")
    processes.wait_reaped(pids)
    if pids:
        lab.log(f"    stopped pid {', '.join(map(str, pids))}")


def remove_host(lab: LocalLab, h: LabHost) -> None:
    """Unmount the host's overlay and remove its cgroups and directory (its disk is gone)."""
    m = lab.merged(h)
    for _ in range(20):
        if not is_mounted(m):
            break
        if lab.run(["umount", str(m)], check=False).returncode != 0:
            time.sleep(0.25)
    else:
        lab.run(["umount", "--lazy", str(m)])
    with contextlib.suppress(FileNotFoundError):
        cgroups.remove_cgroups(h)
    shutil.rmtree(NSPAWN_PROPAGATE / h.machine, ignore_errors=True)
    shutil.rmtree(lab.host_dir(h), ignore_errors=True)
