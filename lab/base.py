"""The base image: a debootstrap of Debian, configured once, shared read-only by every host's overlay.

Cached in <cache>/base-<hash of its recipe> (lab.plan.base_recipe), so a changed recipe makes a new
base and an unchanged one is reused across down/up.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

from lab.locallab import LocalLab, StepFailed
from lab.plan import (
    BASE_FILE_MODES,
    DEFAULT_MIRROR,
    INCLUDE,
    LOGIN_UID,
    LOGIN_USER,
    SUDOERS_FILE,
    VARIANT,
    base_files,
    base_recipe,
    mirror_from_sources,
    recipe_hash,
)

COMPLETE = ".offlab-complete"  # written last into a base: its presence means the base is usable
PROGRESS_EVERY_S = 10


def mirror() -> str:
    """The Debian mirror the controller's own apt uses."""
    try:
        return mirror_from_sources(Path("/etc/apt/sources.list.d/debian.sources").read_text())
    except OSError:
        return DEFAULT_MIRROR


def base_path(lab: LocalLab) -> Path:
    """base-RELEASE-HASH: one cached base per release, so that switching releases rebuilds nothing."""
    return lab.cache / f"base-{lab.release}-{recipe_hash(base_recipe(mirror(), lab.release))}"


def is_built(base: Path) -> bool:
    return (base / COMPLETE).exists()


def in_use(base: Path) -> bool:
    """Whether anything mounted (a host's overlay) refers to this base."""
    with open("/proc/self/mountinfo") as f:
        return str(base) in f.read()


# a line of debootstrap's about one package: "I: Retrieving libc6 2.36-9", "I: Unpacking libc6:amd64..."
# (not a stage: "I: Retrieving Packages", "I: Unpacking the base system...")
PACKAGE_LINE = re.compile(
    r"^I: (Retrieving|Unpacking|Configuring) [a-z0-9][a-z0-9.+:-]*( [0-9]\S*)?(\.\.\.)?$"
)


def progress_line(log_text: str, elapsed_s: float) -> str:
    """debootstrap's progress from its log: packages fetched, unpacked and configured so far."""
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    verbs = [m.group(1) for m in map(PACKAGE_LINE.match, lines) if m]
    count = verbs.count

    last = lines[-1] if lines else "(nothing logged yet)"
    return (
        f"    debootstrap {elapsed_s:.0f} s: {count('Retrieving')} packages fetched, "
        f"{count('Unpacking')} unpacked, {count('Configuring')} configured; {last[:100]}"
    )


def run_debootstrap(lab: LocalLab, target: Path, source: str, log: Path) -> int:
    """debootstrap into `target`, its output in `log`, a progress line every PROGRESS_EVERY_S."""
    cmd = [
        "debootstrap",
        f"--variant={VARIANT}",
        f"--include={','.join(INCLUDE)}",
        lab.release,
        str(target),
        source,
    ]
    t0 = time.monotonic()
    with open(log, "w") as f:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        try:
            while True:
                try:
                    return p.wait(timeout=PROGRESS_EVERY_S)
                except subprocess.TimeoutExpired:
                    lab.log(progress_line(log.read_text(errors="replace"), time.monotonic() - t0))
        finally:
            if p.poll() is None:  # interrupted: no debootstrap left behind
                p.kill()
                p.wait()


def ensure_base(lab: LocalLab) -> Path:
    """The base for the current recipe, made now (a few minutes) unless it is cached."""
    base = base_path(lab)
    if is_built(base):
        lab.log(f"    cached: {base}")
        return base
    lab.cache.mkdir(parents=True, exist_ok=True)
    tmp = base.with_name(base.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    source = mirror()
    log = lab.cache / "debootstrap.log"
    lab.log(f"    debootstrap {lab.release} from {source} into {base} (a few minutes; log {log})")
    returncode = run_debootstrap(lab, tmp, source, log)
    if returncode != 0:
        tail = log.read_text()[-2000:]
        raise StepFailed(f"debootstrap exited {returncode} (log {log}):\n{tail}")
    configure_base(lab, tmp)
    (tmp / COMPLETE).write_text(json.dumps(base_recipe(source, lab.release), sort_keys=True, indent=1))
    tmp.rename(base)
    # older bases of this release (another recipe) are not used by anything running: drop them
    for old in lab.cache.glob(f"base-{lab.release}-*"):
        if old != base and not in_use(old):
            shutil.rmtree(old, ignore_errors=True)
    return base


def configure_base(lab: LocalLab, root: Path) -> None:
    """Write lab.plan.base_files into the fresh debootstrap, add the login user (its SSH key is
    each host's: hosts.configure_host), enable networkd, drop apt's caches."""
    for key in Path(root, "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # made by openssh-server's postinst; each host makes its own at first boot
    for rel, content in base_files(lab.release).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        if content.startswith("->"):
            path.symlink_to(content[2:])
        else:
            path.write_text(content)
    for rel, mode in BASE_FILE_MODES.items():
        (root / rel).chmod(mode)
    chroot = ["chroot", str(root)]
    lab.run([*chroot, "groupadd", "--gid", str(LOGIN_UID), LOGIN_USER])
    lab.run(
        [*chroot, "useradd", "--uid", str(LOGIN_UID), "--gid", str(LOGIN_UID), "--create-home"]
        + ["--shell", "/bin/bash", "--password", "*", LOGIN_USER]  # '*': no password, key only
    )
    lab.run([*chroot, "visudo", "--check", "--file", f"/{SUDOERS_FILE}"])
    lab.run([*chroot, "systemctl", "enable", "systemd-networkd"])
    lab.run([*chroot, "apt-get", "clean"])
    for lists in Path(root, "var/lib/apt/lists").glob("*"):
        if lists.is_file():
            lists.unlink()
