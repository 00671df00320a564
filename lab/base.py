"""The base image: a debootstrap of Debian, configured once, shared read-only by every host's overlay.

Cached in <cache>/base-<hash of its recipe> (lab.plan.base_recipe), so a changed recipe makes a new
base and an unchanged one is reused across down/up.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from lab.locallab import LocalLab, StepFailed
from lab.plan import (
    DEFAULT_MIRROR,
    INCLUDE,
    SUITE,
    VARIANT,
    base_files,
    base_recipe,
    mirror_from_sources,
    recipe_hash,
)

COMPLETE = ".offlab-complete"  # written last into a base: its presence means the base is usable


def mirror() -> str:
    """The Debian mirror the controller's own apt uses."""
    try:
        return mirror_from_sources(Path("/etc/apt/sources.list.d/debian.sources").read_text())
    except OSError:
        return DEFAULT_MIRROR


def base_path(lab: LocalLab) -> Path:
    return lab.cache / f"base-{recipe_hash(base_recipe(mirror()))}"


def is_built(base: Path) -> bool:
    return (base / COMPLETE).exists()


def in_use(base: Path) -> bool:
    """Whether anything mounted (a host's overlay) refers to this base."""
    with open("/proc/self/mountinfo") as f:
        return str(base) in f.read()


def ensure_base(lab: LocalLab) -> Path:
    """The base for the current recipe, made now (about a minute) unless it is cached."""
    base = base_path(lab)
    if is_built(base):
        lab.log(f"    cached: {base}")
        return base
    lab.cache.mkdir(parents=True, exist_ok=True)
    tmp = base.with_name(base.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    source = mirror()
    lab.log(f"    debootstrap {SUITE} from {source} into {base} (about a minute)")
    log = lab.cache / "debootstrap.log"
    with open(log, "w") as f:
        p = subprocess.run(
            [
                "debootstrap",
                f"--variant={VARIANT}",
                f"--include={','.join(INCLUDE)}",
                SUITE,
                str(tmp),
                source,
            ],
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    if p.returncode != 0:
        tail = log.read_text()[-2000:]
        raise StepFailed(f"debootstrap exited {p.returncode} (log {log}):\n{tail}")
    configure_base(lab, tmp)
    (tmp / COMPLETE).write_text(json.dumps(base_recipe(source), sort_keys=True, indent=1))
    tmp.rename(base)
    # older bases (another recipe) are not used by anything running: drop them
    for old in lab.cache.glob("base-*"):
        if old != base and not in_use(old):
            shutil.rmtree(old, ignore_errors=True)
    return base


def configure_base(lab: LocalLab, root: Path) -> None:
    """Write lab.plan.base_files into the fresh debootstrap, enable networkd, drop apt's caches."""
    for key in Path(root, "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # made by openssh-server's postinst; each host makes its own at first boot
    for rel, content in base_files().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        if content.startswith("->"):
            path.symlink_to(content[2:])
        else:
            path.write_text(content)
    lab.run(["chroot", str(root), "systemctl", "enable", "systemd-networkd"])
    lab.run(["chroot", str(root), "apt-get", "clean"])
    for lists in Path(root, "var/lib/apt/lists").glob("*"):
        if lists.is_file():
            lists.unlink()
