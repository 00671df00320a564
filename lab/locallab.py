"""LocalLab: where the lab keeps its state on the controller, and how its steps run and fail.

The modules that act on the machine (base, network, hosts) are functions taking a LocalLab.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import time
from pathlib import Path

from lab.plan import (
    DEFAULT_PROFILE,
    DEFAULT_RELEASE,
    PROFILES,
    RELEASES,
    LabHost,
    address_plan,
    check_release,
)

REPO = Path(__file__).resolve().parent.parent


class StepFailed(Exception):
    """A step of labctl failed; the message names the step and says why."""


class LocalLab:
    def __init__(
        self,
        state: Path | None = None,
        cache: Path | None = None,
        verbose: bool = False,
        profile: str | None = None,
        release: str | None = None,
    ):
        """`profile`: the lab's hosts (lab.plan.PROFILES); `release`: their Debian release
        (lab.plan.RELEASES). None: the one that is up (recorded_profile, recorded_release), else
        the default."""
        self.state = Path(state or os.environ.get("OFFLAB_STATE") or REPO / ".lab").resolve()
        self.cache = Path(cache or os.environ.get("OFFLAB_CACHE") or "/var/cache/offload-lab")
        self.verbose = verbose
        self.profile_file = self.state / "profile"
        self.profile = profile or self.recorded_profile() or DEFAULT_PROFILE
        self.release_file = self.state / "release"
        self.release = check_release(release or self.recorded_release() or DEFAULT_RELEASE)
        self.hosts = address_plan(profile=self.profile)
        self.ssh_dir = self.state / "ssh"
        self.key = self.ssh_dir / "id_ed25519"
        self.known_hosts = self.ssh_dir / "known_hosts"
        self.acng_dir = self.state / "acng"
        self.inventory = REPO / "inventory" / "lab" / "hosts.yml"

    @staticmethod
    def _recorded(path: Path, known) -> str | None:
        """The name `up` wrote into `path`, until `down` removes it; None if none or unknown."""
        try:
            name = path.read_text().strip()
        except OSError:
            return None
        return name if name in known else None

    def recorded_profile(self) -> str | None:
        """The profile `up` brought up last (.lab/profile)."""
        return self._recorded(self.profile_file, PROFILES)

    def record_profile(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.profile_file.write_text(self.profile + "\n")

    def recorded_release(self) -> str | None:
        """The release `up` brought up last (.lab/release)."""
        return self._recorded(self.release_file, RELEASES)

    def record_release(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.release_file.write_text(self.release + "\n")

    def other_profiles_hosts(self) -> list[LabHost]:
        """Hosts of the other profiles (a lab brought up with another profile is stopped by `down`
        even if .lab/profile was lost)."""
        mine = {h.name for h in self.hosts}
        return [
            h
            for name in PROFILES
            if name != self.profile
            for h in address_plan(profile=name)
            if h.name not in mine
        ]

    def host_dir(self, h: LabHost) -> Path:
        """.lab/hosts/NAME: the host's overlay (upper, work, merged), console.log, pid, base."""
        return self.state / "hosts" / h.name

    def merged(self, h: LabHost) -> Path:
        """The host's root directory (the mounted overlay)."""
        return self.host_dir(h) / "merged"

    def log(self, msg: str) -> None:
        print(msg, flush=True)

    def run(
        self, cmd: list[str], check: bool = True, timeout: float | None = None, **kw
    ) -> subprocess.CompletedProcess:
        """Run a command, output captured; with check, a non-zero exit raises StepFailed with its output."""
        if self.verbose:
            self.log("   $ " + " ".join(cmd))
        p = subprocess.run(cmd, text=True, capture_output=True, timeout=timeout, **kw)
        if check and p.returncode != 0:
            out = ((p.stdout or "") + (p.stderr or "")).strip()
            raise StepFailed(
                f"`{' '.join(cmd)}` exited {p.returncode}" + (f":\n{out[-3000:]}" if out else "")
            )
        return p

    @contextlib.contextmanager
    def step(self, name: str):
        """Print `==> name`; any error inside becomes StepFailed("step 'name' failed: ...")."""
        self.log(f"==> {name}")
        t0 = time.monotonic()
        try:
            yield
        except StepFailed as e:
            raise StepFailed(f"step '{name}' failed: {e}") from None
        except Exception as e:  # noqa: BLE001 - any error names its step
            raise StepFailed(f"step '{name}' failed: {type(e).__name__}: {e}") from e
        if self.verbose:
            self.log(f"    ({time.monotonic() - t0:.1f} s)")

    @contextlib.contextmanager
    def locked(self):
        """One labctl at a time (up and down take .lab/lock)."""
        self.state.mkdir(parents=True, exist_ok=True)
        with open(self.state / "lock", "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StepFailed("another labctl is running (lock on .lab/lock)") from None
            yield
