"""lab/labctl: up [--profile P] [--release R] | status | down [--purge] | clean | inventory
(see lab/README.md).

`up` and `down` are sequences of named steps (LocalLab.step); a failed step ends the command
with `labctl CMD: step 'NAME' failed: WHY` and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from lab import base, cgroups, hosts, network, processes
from lab.locallab import REPO, LocalLab, StepFailed
from lab.plan import BRIDGE, DEFAULT_PROFILE, DEFAULT_RELEASE, PROFILES, RELEASES, LabHost, inventory_text
from lab.status import status

PREREQUISITES = ("debootstrap", "systemd-nspawn", "ip", "apt-cacher-ng", "ssh", "ssh-keygen")


def check_root() -> None:
    if os.geteuid() != 0:
        raise StepFailed("labctl must run as root")


def check_prereqs() -> None:
    check_root()
    missing = [c for c in PREREQUISITES if not shutil.which(c) and not Path("/usr/sbin", c).exists()]
    if missing:
        raise StepFailed(f"missing commands: {', '.join(missing)} (see deps/debian-packages.txt)")
    if not (cgroups.CGROUP_ROOT / "systemd" / "cgroup.procs").exists():
        raise StepFailed("expected the hybrid cgroup layout (/sys/fs/cgroup/systemd)")


def write_inventory(lab: LocalLab) -> None:
    """inventory/lab/hosts.yml (rewritten only if it changed)."""
    text = inventory_text(lab.hosts, lab.key, lab.known_hosts, lab.profile, lab.release)
    lab.inventory.parent.mkdir(parents=True, exist_ok=True)
    if not lab.inventory.exists() or lab.inventory.read_text() != text:
        lab.inventory.write_text(text)


def present(lab: LocalLab, h: LabHost) -> bool:
    """The host has a disk or a running launcher."""
    return lab.host_dir(h).exists() or bool(hosts.nspawn_pids(h))


def check_one_profile(lab: LocalLab) -> None:
    """One profile at a time: they share the bridge and the inventory's path."""
    others = [h.name for h in lab.other_profiles_hosts() if present(lab, h)]
    if others:
        recorded = lab.recorded_profile()
        which = f"the {recorded} profile" if recorded and recorded != lab.profile else "another profile"
        raise StepFailed(
            f"{which} is up ({', '.join(others)}): run `lab/labctl down` first (one profile at a time)"
        )


def check_one_release(lab: LocalLab) -> None:
    """One release at a time: a host's disk is an overlay on its release's base."""
    recorded = lab.recorded_release()
    hosts_there = [h.name for h in lab.hosts if present(lab, h)]
    if recorded and recorded != lab.release and hosts_there:
        raise StepFailed(
            f"the lab's hosts run {recorded} ({', '.join(hosts_there)}): run `lab/labctl down` "
            f"first to switch to {lab.release} (one release at a time)"
        )


def up(lab: LocalLab) -> None:
    """Bring up whatever is missing; running hosts are left alone, stopped ones restart with their disk."""
    t0 = time.monotonic()
    with lab.step("check prerequisites"):
        check_prereqs()
    with lab.locked():
        with lab.step(f"profile {lab.profile}"):
            check_one_profile(lab)
            lab.record_profile()
        with lab.step(f"release {lab.release} ({RELEASES[lab.release]})"):
            check_one_release(lab)
            lab.record_release()
        with lab.step("ssh key"):
            hosts.ensure_key(lab)
        with lab.step("base image"):
            base_dir = base.ensure_base(lab)
        with lab.step(f"bridge {BRIDGE}"):
            network.ensure_bridge(lab)
        with lab.step("apt-cacher-ng"):
            network.ensure_acng(lab)
        plan = cgroups.cpu_plan(lab.hosts)
        if plan is None:
            lab.log("WARNING: a single CPU: hosts are not pinned")
        started = []
        for h in lab.hosts:
            pid = hosts.host_pid(lab, h)
            if pid and hosts.is_mounted(lab.merged(h)):
                lab.log(f"==> host {h.name}: already running (pid {pid})")
                with lab.step(f"host {h.name}: trust its host keys"):
                    hosts.trust_host_keys(lab, h)
                continue
            with lab.step(f"host {h.name}: overlay"):
                hosts.ensure_overlay(lab, h, base_dir)
            with lab.step(f"host {h.name}: trust its host keys"):
                hosts.trust_host_keys(lab, h)
            with lab.step(f"host {h.name}: start"):
                hosts.start_host(lab, h, plan[h.name] if plan else None)
            started.append(h)
        for h in lab.hosts:
            with lab.step(f"host {h.name}: wait for ssh and systemd"):
                hosts.wait_host(lab, h, quick=h not in started)
        with lab.step("inventory"):
            write_inventory(lab)
    lab.log(
        f"lab up ({lab.profile} profile, {lab.release}): {len(lab.hosts)} hosts on {BRIDGE} "
        f"in {time.monotonic() - t0:.0f} s (inventory {lab.inventory.relative_to(REPO)})"
    )


def down(lab: LocalLab, purge: bool = False) -> None:
    """Stop and remove the hosts (the profile's, and any other profile's left), apt-cacher-ng,
    bridge and inventory; with purge also the caches."""
    with lab.step("check prerequisites"):
        check_root()
    with lab.locked():
        targets = lab.hosts + [h for h in lab.other_profiles_hosts() if present(lab, h)]
        with lab.step("hosts: SIGTERM"):  # all at once, so that they halt in parallel
            for h in targets:
                processes.signal_each(hosts.nspawn_pids(h), signal.SIGTERM)
        for h in targets:
            with lab.step(f"host {h.name}: stop"):
                hosts.stop_host(lab, h)
        for h in targets:
            with lab.step(f"host {h.name}: remove"):
                hosts.remove_host(lab, h)
        with lab.step("apt-cacher-ng: stop"):
            network.stop_acng(lab)
        with lab.step(f"bridge {BRIDGE}: remove"):
            network.remove_bridge(lab)
        with lab.step("inventory: remove"):
            lab.inventory.unlink(missing_ok=True)
            lab.known_hosts.unlink(missing_ok=True)
            shutil.rmtree(lab.state / "hosts", ignore_errors=True)
            lab.profile_file.unlink(missing_ok=True)
            lab.release_file.unlink(missing_ok=True)
        if purge:
            with lab.step("purge: base and apt cache"):
                for p in lab.cache.glob("base-*"):
                    if base.in_use(p):
                        raise StepFailed(f"{p} is still mounted")
                shutil.rmtree(lab.cache, ignore_errors=True)
                shutil.rmtree(lab.acng_dir, ignore_errors=True)
    lab.log("lab down" + (" (base and apt cache purged)" if purge else " (base cache kept)"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="lab/labctl", description="the offload-lab local lab")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every command")
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="bring the lab up (idempotent)")
    u.add_argument(
        "--profile",
        choices=list(PROFILES),
        default=DEFAULT_PROFILE,
        help="which hosts: default (one per group) or cluster (3 brokers, 2 of each other part)",
    )
    u.add_argument(
        "--release",
        choices=list(RELEASES),
        default=DEFAULT_RELEASE,
        help="the hosts' Debian release: trixie (Debian 13, RabbitMQ 4.0) or bookworm "
        "(Debian 12, RabbitMQ 3.10)",
    )
    sub.add_parser("status", help="show the lab's state; exit 0 only if all of it is up")
    d = sub.add_parser("down", help="stop and remove the hosts, bridge and apt-cacher-ng")
    d.add_argument("--purge", action="store_true", help="also remove the cached base and apt cache")
    sub.add_parser("clean", help="same as down --purge")
    sub.add_parser("inventory", help="(re)write inventory/lab/hosts.yml only")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # up brings up the profile it is given; the other commands act on the profile that is up
    up_cmd = args.cmd == "up"
    lab = LocalLab(
        verbose=args.verbose,
        profile=args.profile if up_cmd else None,
        release=args.release if up_cmd else None,
    )
    try:
        if args.cmd == "up":
            up(lab)
        elif args.cmd == "status":
            return status(lab)
        elif args.cmd in ("down", "clean"):
            down(lab, purge=args.cmd == "clean" or args.purge)
        elif args.cmd == "inventory":
            write_inventory(lab)
    except StepFailed as e:
        print(f"labctl {args.cmd}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"labctl {args.cmd}: interrupted", file=sys.stderr)
        return 130
    return 0
