"""The local lab: four Debian bookworm hosts as systemd-nspawn containers on a private bridge.

Everything `lab/labctl` does lives here. The pure parts (address plan, CPU split, inventory
text, base recipe hash, apt-cacher-ng config) have no side effects and are unit-tested in
tests/lab/; the rest acts on the machine and is exercised by the `lab` lifecycle test.

Layout on the controller:
  <repo>/.lab/                      git-ignored state (override with OFFLAB_STATE)
    ssh/id_ed25519[.pub], ssh/known_hosts, ssh/config
    acng/conf/ acng/log/ acng/pid   the lab's own apt-cacher-ng instance
    hosts/NAME/{upper,work,merged}  one overlay per host, console.log, pid, base
  /var/cache/offload-lab/           kept by `down`, removed by `down --purge` (OFFLAB_CACHE)
    base-<hash>/                    the debootstrap base, keyed by a hash of its recipe
    apt-cacher-ng/                  the apt cache, so re-provisioning is fast
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BRIDGE = "offlab0"
NETWORK_PREFIX = "10.77.77"
BRIDGE_ADDRESS = f"{NETWORK_PREFIX}.1"
PREFIX_LEN = 24
ACNG_PORT = 3142
MACHINE_PREFIX = "offlab-"
# name -> last octet; order is the order hosts are started and listed
HOST_OCTETS = {"broker": 11, "gateway": 12, "core": 13, "loadgen": 14}
LOADGEN = "loadgen"

SUITE = "bookworm"
VARIANT = "minbase"
INCLUDE = ("openssh-server", "python3", "systemd", "systemd-sysv", "dbus", "iproute2")
# bump when the base configuration below changes in a way the file contents do not show
BASE_RECIPE_VERSION = 1
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# the URLs the hosts' apt uses; apt-cacher-ng maps them to the same URLs upstream
HOST_DEBIAN_URI = "http://deb.debian.org/debian"
HOST_SECURITY_URI = "http://deb.debian.org/debian-security"

CGROUP_ROOT = Path("/sys/fs/cgroup")
# hierarchies a host's launcher is moved into (hybrid layout: systemd v1 + unified v2)
CGROUP_TRACKING = ("systemd", "unified")
NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")

BOOT_TIMEOUT_S = 180
STOP_TIMEOUT_S = 20


# --------------------------------------------------------------------------- pure logic


@dataclass(frozen=True)
class Host:
    name: str
    address: str

    @property
    def machine(self) -> str:
        return MACHINE_PREFIX + self.name

    @property
    def inventory_name(self) -> str:
        """Ansible host name; unlike the host's own hostname it differs from its group's name."""
        return "lab-" + self.name


def address_plan(prefix: str = NETWORK_PREFIX, octets: dict[str, int] | None = None) -> list[Host]:
    """The lab's hosts with their static addresses, in start order."""
    octets = HOST_OCTETS if octets is None else octets
    seen = set()
    hosts = []
    for name, octet in octets.items():
        if not 2 <= octet <= 254 or octet in seen:
            raise ValueError(f"bad or duplicate host octet {octet} for {name}")
        seen.add(octet)
        hosts.append(Host(name, f"{prefix}.{octet}"))
    return hosts


def parse_cpu_list(text: str) -> list[int]:
    """'0-2,4' -> [0, 1, 2, 4] (kernel cpu list format)."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            cpus.update(range(int(lo), int(hi) + 1))
        else:
            cpus.add(int(part))
    return sorted(cpus)


def format_cpu_list(cpus: list[int]) -> str:
    """[0, 1, 2, 4] -> '0-2,4'."""
    out = []
    cpus = sorted(set(cpus))
    i = 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(out)


def cpu_split(cpus: list[int], names: list[str], loadgen: str = LOADGEN) -> dict[str, str] | None:
    """The loadgen gets the last CPU to itself, every other host shares the rest.

    None means "do not pin" (a single CPU cannot be split)."""
    cpus = sorted(set(cpus))
    if len(cpus) < 2:
        return None
    servers = format_cpu_list(cpus[:-1])
    return {n: (str(cpus[-1]) if n == loadgen else servers) for n in names}


def inventory_text(hosts: list[Host], key_file: Path, known_hosts: Path) -> str:
    """inventory/lab/hosts.yml: one group per host name, real SSH as root with the lab key."""
    common = f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes"
    lines = [
        "# Written by `lab/labctl up` (git-ignored); do not edit, it is rewritten on every up.",
        "all:",
        "  children:",
    ]
    for h in hosts:
        lines += [
            f"    {h.name}:",
            "      hosts:",
            f"        {h.inventory_name}:",
            f"          ansible_host: {h.address}",
            "          ansible_user: root",
            f"          ansible_ssh_private_key_file: {json.dumps(str(key_file))}",
            f"          ansible_ssh_common_args: {json.dumps(common)}",
            "          ansible_python_interpreter: /usr/bin/python3",
            f"          offload_private_address: {h.address}",
        ]
    return "\n".join(lines) + "\n"


def etc_hosts_text(hosts: list[Host], me: str) -> str:
    lines = ["127.0.0.1\tlocalhost", f"127.0.1.1\t{me}", f"{BRIDGE_ADDRESS}\tcontroller"]
    lines += [f"{h.address}\t{h.name}" for h in hosts if h.name != me] + [
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]
    return "\n".join(lines) + "\n"


def host_network_text(address: str) -> str:
    return (
        "# offload-lab: static address on the lab bridge; no gateway, no DNS (no route out)\n"
        "[Match]\nVirtualization=container\nName=host0\n\n"
        f"[Network]\nAddress={address}/{PREFIX_LEN}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
    )


def mirror_from_sources(text: str) -> str:
    """The first Debian archive URI (not -security) from a deb822 or one-line sources file."""
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"^URIs:\s*(\S+)", line) or re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", line)
        if m and "security" not in m.group(1):
            return m.group(1).rstrip("/")
    return DEFAULT_MIRROR


def base_files() -> dict[str, str]:
    """Files written into the base (path -> content; content '->X' makes a symlink to X)."""
    return {
        "etc/machine-id": "",
        "var/lib/dbus/machine-id": "->/etc/machine-id",
        "etc/systemd/system/ssh.service.d/10-offlab-hostkeys.conf": (
            "# offload-lab: host keys are made at first boot, so every host has its own\n"
            "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n"
        ),
        "etc/apt/apt.conf.d/01offlab-proxy": (
            "// offload-lab: the hosts have no route out; apt goes through apt-cacher-ng on the bridge\n"
            f'Acquire::http::Proxy "http://{BRIDGE_ADDRESS}:{ACNG_PORT}";\n'
            # the controller's mirror serves a dated snapshot, as the controller's own apt config allows
            'Acquire::Check-Valid-Until "false";\n'
            'Acquire::Languages "none";\n'
        ),
        "etc/apt/sources.list": "# offload-lab: see sources.list.d/debian.sources\n",
        "etc/apt/sources.list.d/debian.sources": (
            f"Types: deb\nURIs: {HOST_DEBIAN_URI}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            f"Types: deb\nURIs: {HOST_SECURITY_URI}\nSuites: {SUITE}-security\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        ),
        "etc/resolv.conf": "# offload-lab: no DNS inside the lab; names are in /etc/hosts\n",
        # periodic apt runs would take the dpkg lock in the middle of provisioning
        "etc/systemd/system/apt-daily.timer": "->/dev/null",
        "etc/systemd/system/apt-daily-upgrade.timer": "->/dev/null",
    }


def base_recipe(mirror: str) -> dict:
    return {
        "version": BASE_RECIPE_VERSION,
        "suite": SUITE,
        "variant": VARIANT,
        "include": list(INCLUDE),
        "mirror": mirror,
        "files": base_files(),
        "enable": ["systemd-networkd"],
    }


def recipe_hash(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def acng_config_text(cache_dir: Path, log_dir: Path, run_dir: Path) -> str:
    return f"""# offload-lab's own apt-cacher-ng instance (not the system service); written by lab/labctl
CacheDir: {cache_dir}
LogDir: {log_dir}
SupportDir: /usr/lib/apt-cacher-ng
BindAddress: {BRIDGE_ADDRESS}
Port: {ACNG_PORT}
SocketPath: {run_dir}/socket
PidFile: {run_dir}/acng.pid
ForeGround: 1
UnbufferLogs: 1
# only Debian, only deb.debian.org, which the controller's own apt uses
Remap-debrep: deb.debian.org/debian ; file:backends_debian
Remap-secdeb: deb.debian.org/debian-security ; file:backends_debian_security
# nothing else: the hosts have no route out, the proxy must not become one
ForceManaged: 1
ReportPage: acng-report.html
ExThreshold: 4
"""


# --------------------------------------------------------------------------- machine side


class StepFailed(Exception):
    pass


class Lab:
    def __init__(self, state: Path | None = None, cache: Path | None = None, verbose: bool = False):
        self.state = Path(state or os.environ.get("OFFLAB_STATE") or REPO / ".lab").resolve()
        self.cache = Path(cache or os.environ.get("OFFLAB_CACHE") or "/var/cache/offload-lab")
        self.verbose = verbose
        self.hosts = address_plan()
        self.ssh_dir = self.state / "ssh"
        self.key = self.ssh_dir / "id_ed25519"
        self.known_hosts = self.ssh_dir / "known_hosts"
        self.acng_dir = self.state / "acng"
        self.inventory = REPO / "inventory" / "lab" / "hosts.yml"

    # ---- small helpers
    def log(self, msg: str) -> None:
        print(msg, flush=True)

    def run(
        self, cmd: list[str], check: bool = True, capture: bool = True, timeout: float | None = None, **kw
    ) -> subprocess.CompletedProcess:
        if self.verbose:
            self.log("   $ " + " ".join(cmd))
        p = subprocess.run(cmd, text=True, capture_output=capture, timeout=timeout, **kw)
        if check and p.returncode != 0:
            out = ((p.stdout or "") + (p.stderr or "")).strip()
            raise StepFailed(
                f"`{' '.join(cmd)}` exited {p.returncode}" + (f":\n{out[-3000:]}" if out else "")
            )
        return p

    @contextlib.contextmanager
    def step(self, name: str):
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
        self.state.mkdir(parents=True, exist_ok=True)
        with open(self.state / "lock", "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StepFailed("another labctl is running (lock on .lab/lock)") from None
            yield

    def host_dir(self, h: Host) -> Path:
        return self.state / "hosts" / h.name

    def merged(self, h: Host) -> Path:
        return self.host_dir(h) / "merged"

    def ssh_cmd(self, h: Host, *remote: str, connect_timeout: int = 3) -> list[str]:
        return [
            "ssh", "-i", str(self.key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=accept-new",
            "-o", f"ConnectTimeout={connect_timeout}", "-o", "LogLevel=ERROR",
            f"root@{h.address}", *remote,
        ]  # fmt: skip

    def ssh(
        self, h: Host, *remote: str, timeout: float = 30, check: bool = False
    ) -> subprocess.CompletedProcess:
        return self.run(self.ssh_cmd(h, *remote), check=check, timeout=timeout, stdin=subprocess.DEVNULL)

    # ---- process helpers
    @staticmethod
    def cmdline(pid: int) -> list[str]:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return []
        return [a.decode(errors="replace") for a in raw.split(b"\0") if a]

    def nspawn_pids(self, h: Host) -> list[int]:
        """systemd-nspawn processes for this host, found by their command line."""
        pids = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                args = self.cmdline(int(d.name))
                if args and args[0].endswith("systemd-nspawn") and f"--machine={h.machine}" in args:
                    pids.append(int(d.name))
        return pids

    def host_pid(self, h: Host) -> int | None:
        try:
            pid = int((self.host_dir(h) / "pid").read_text())
        except (OSError, ValueError):
            pid = None
        if pid and pid in self.nspawn_pids(h):
            return pid
        found = self.nspawn_pids(h)
        return found[0] if found else None

    def acng_pid(self) -> int | None:
        try:
            pid = int((self.acng_dir / "pid").read_text())
        except (OSError, ValueError):
            return None
        args = self.cmdline(pid)
        if args and "apt-cacher-ng" in args[0] and str(self.acng_dir / "conf") in args:
            return pid
        return None

    @staticmethod
    def port_open(addr: str, port: int, timeout: float = 1.0) -> bool:
        try:
            with socket.create_connection((addr, port), timeout=timeout):
                return True
        except OSError:
            return False

    @staticmethod
    def is_mounted(path: Path) -> bool:
        p = str(path)
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == p for line in f)

    def bridge_up(self) -> bool:
        p = self.run(["ip", "-j", "addr", "show", "dev", BRIDGE], check=False)
        if p.returncode != 0:
            return False
        info = json.loads(p.stdout or "[]")
        return (
            bool(info)
            and any(a.get("local") == BRIDGE_ADDRESS for a in info[0].get("addr_info", []))
            and "UP" in info[0].get("flags", [])
        )

    def host_cpus(self) -> list[int]:
        try:
            return parse_cpu_list((CGROUP_ROOT / "cpuset" / "cpuset.effective_cpus").read_text())
        except OSError:
            return sorted(os.sched_getaffinity(0))

    def cpu_plan(self) -> dict[str, str] | None:
        return cpu_split(self.host_cpus(), [h.name for h in self.hosts])

    # ------------------------------------------------------------------ up
    def up(self) -> None:
        t0 = time.monotonic()
        with self.step("check prerequisites"):
            self.check_prereqs()
        with self.locked():
            with self.step("ssh key"):
                self.ensure_key()
            with self.step("base image"):
                base = self.ensure_base()
            with self.step(f"bridge {BRIDGE}"):
                self.ensure_bridge()
            with self.step("apt-cacher-ng"):
                self.ensure_acng()
            plan = self.cpu_plan()
            if plan is None:
                self.log("WARNING: a single CPU: hosts are not pinned")
            started = []
            for h in self.hosts:
                if self.host_pid(h) and self.is_mounted(self.merged(h)):
                    self.log(f"==> host {h.name}: already running (pid {self.host_pid(h)})")
                    continue
                with self.step(f"host {h.name}: overlay"):
                    self.ensure_overlay(h, base)
                with self.step(f"host {h.name}: start"):
                    self.start_host(h, plan[h.name] if plan else None)
                started.append(h)
            for h in self.hosts:
                with self.step(f"host {h.name}: wait for ssh and systemd"):
                    self.wait_host(h, quick=h not in started)
            with self.step("inventory"):
                self.write_inventory()
        self.log(
            f"lab up: {len(self.hosts)} hosts on {BRIDGE} in {time.monotonic() - t0:.0f} s "
            f"(inventory {self.inventory.relative_to(REPO)})"
        )

    def check_prereqs(self) -> None:
        if os.geteuid() != 0:
            raise StepFailed("labctl must run as root")
        missing = [
            c
            for c in ("debootstrap", "systemd-nspawn", "ip", "apt-cacher-ng", "ssh", "ssh-keygen")
            if not shutil.which(c) and not Path("/usr/sbin", c).exists()
        ]
        if missing:
            raise StepFailed(f"missing commands: {', '.join(missing)} (see deps/debian-packages.txt)")
        if not (CGROUP_ROOT / "systemd" / "cgroup.procs").exists():
            raise StepFailed("expected the hybrid cgroup layout (/sys/fs/cgroup/systemd)")

    def ensure_key(self) -> None:
        self.ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.key.exists():
            self.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "offload-lab", "-f", str(self.key)]
            )
        cfg = [f"# ssh -F {self.ssh_dir / 'config'} broker"]
        for h in self.hosts:
            cfg += [
                f"Host {h.name} {h.inventory_name} {h.address}",
                f"  HostName {h.address}",
                "  User root",
                f"  IdentityFile {self.key}",
                "  IdentitiesOnly yes",
                f"  UserKnownHostsFile {self.known_hosts}",
                "  StrictHostKeyChecking accept-new",
            ]
        (self.ssh_dir / "config").write_text("\n".join(cfg) + "\n")

    # ---- base
    def mirror(self) -> str:
        try:
            return mirror_from_sources(Path("/etc/apt/sources.list.d/debian.sources").read_text())
        except OSError:
            return DEFAULT_MIRROR

    def base_path(self) -> Path:
        return self.cache / f"base-{recipe_hash(base_recipe(self.mirror()))}"

    def ensure_base(self) -> Path:
        base = self.base_path()
        if (base / ".offlab-complete").exists():
            self.log(f"    cached: {base}")
            return base
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = base.with_name(base.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        mirror = self.mirror()
        self.log(f"    debootstrap {SUITE} from {mirror} into {base} (about a minute)")
        log = self.cache / "debootstrap.log"
        with open(log, "w") as f:
            p = subprocess.run(
                [
                    "debootstrap",
                    f"--variant={VARIANT}",
                    f"--include={','.join(INCLUDE)}",
                    SUITE,
                    str(tmp),
                    mirror,
                ],
                stdout=f,
                stderr=subprocess.STDOUT,
            )
        if p.returncode != 0:
            tail = log.read_text()[-2000:]
            raise StepFailed(f"debootstrap exited {p.returncode} (log {log}):\n{tail}")
        self.configure_base(tmp)
        (tmp / ".offlab-complete").write_text(json.dumps(base_recipe(mirror), sort_keys=True, indent=1))
        tmp.rename(base)
        # older bases (another recipe) are not used by anything running: drop them
        for old in self.cache.glob("base-*"):
            if old != base and not self.base_in_use(old):
                shutil.rmtree(old, ignore_errors=True)
        return base

    def base_in_use(self, base: Path) -> bool:
        with open("/proc/self/mountinfo") as f:
            return str(base) in f.read()

    def configure_base(self, root: Path) -> None:
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
        self.run(["chroot", str(root), "systemctl", "enable", "systemd-networkd"])
        self.run(["chroot", str(root), "apt-get", "clean"])
        for lists in Path(root, "var/lib/apt/lists").glob("*"):
            if lists.is_file():
                lists.unlink()

    # ---- network and apt
    def ensure_bridge(self) -> None:
        if self.bridge_up():
            self.log(f"    {BRIDGE} already up")
            return
        if self.run(["ip", "link", "show", BRIDGE], check=False).returncode != 0:
            self.run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        self.run(["ip", "addr", "replace", f"{BRIDGE_ADDRESS}/{PREFIX_LEN}", "dev", BRIDGE])
        self.run(["ip", "link", "set", BRIDGE, "up"])

    def ensure_acng(self) -> None:
        if self.acng_pid() and self.port_open(BRIDGE_ADDRESS, ACNG_PORT):
            self.log(f"    already running (pid {self.acng_pid()})")
            return
        self.stop_acng()
        conf, logd, rund = self.acng_dir / "conf", self.acng_dir / "log", self.acng_dir / "run"
        cache = self.cache / "apt-cacher-ng"
        for d in (conf, logd, rund, cache):
            d.mkdir(parents=True, exist_ok=True)
        (conf / "acng.conf").write_text(acng_config_text(cache, logd, rund))
        (conf / "backends_debian").write_text("http://deb.debian.org/debian/\n")
        (conf / "backends_debian_security").write_text("http://deb.debian.org/debian-security/\n")
        with open(self.acng_dir / "stdout.log", "ab") as out:
            p = subprocess.Popen(
                ["/usr/sbin/apt-cacher-ng", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (self.acng_dir / "pid").write_text(str(p.pid))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise StepFailed(f"apt-cacher-ng exited {p.returncode}; see {self.acng_dir}/stdout.log")
            if self.port_open(BRIDGE_ADDRESS, ACNG_PORT):
                return
            time.sleep(0.2)
        raise StepFailed(f"apt-cacher-ng does not answer on {BRIDGE_ADDRESS}:{ACNG_PORT}")

    # ---- hosts
    def ensure_overlay(self, h: Host, base: Path) -> None:
        d = self.host_dir(h)
        if d.exists() and (d / "base").exists() and (d / "base").read_text().strip() != str(base):
            self.log(f"    {h.name} was made from another base: recreating it")
            self.remove_host(h)
        fresh = not (d / "upper").exists()
        for sub in ("upper", "work", "merged"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "base").write_text(str(base) + "\n")
        if not self.is_mounted(self.merged(h)):
            self.run(
                [
                    "mount",
                    "-t",
                    "overlay",
                    f"offlab-{h.name}",
                    "-o",
                    f"lowerdir={base},upperdir={d / 'upper'},workdir={d / 'work'}",
                    str(self.merged(h)),
                ]
            )
        if fresh or not (d / "configured").exists():
            self.configure_host(h)
            # host keys are new on first boot: forget the old ones for this address
            if self.known_hosts.exists():
                self.run(["ssh-keygen", "-q", "-R", h.address, "-f", str(self.known_hosts)], check=False)
            (d / "configured").write_text("1\n")

    def configure_host(self, h: Host) -> None:
        root = self.merged(h)
        (root / "etc/hostname").write_text(h.name + "\n")
        (root / "etc/hosts").write_text(etc_hosts_text(self.hosts, h.name))
        (root / "etc/systemd/network").mkdir(parents=True, exist_ok=True)
        (root / "etc/systemd/network/80-container-host0.network").write_text(host_network_text(h.address))
        ssh = root / "root/.ssh"
        ssh.mkdir(parents=True, exist_ok=True)
        ssh.chmod(0o700)
        (ssh / "authorized_keys").write_text(Path(str(self.key) + ".pub").read_text())
        (ssh / "authorized_keys").chmod(0o600)

    def cgroup_dirs(self, h: Host) -> list[Path]:
        return [CGROUP_ROOT / hier / h.machine for hier in (*CGROUP_TRACKING, "cpuset")]

    def prepare_cgroups(self, h: Host, cpus: str | None) -> list[Path]:
        """Fresh cgroups for the launcher: its own tracking cgroups (so that --keep-unit hosts do not
        collide) and, when pinned, a cpuset that root inside the host cannot widen."""
        self.remove_cgroups(h)
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

    def start_host(self, h: Host, cpus: str | None) -> None:
        for pid in self.nspawn_pids(h):
            raise StepFailed(f"a systemd-nspawn for {h.machine} is already running (pid {pid}); run down")
        shutil.rmtree(NSPAWN_PROPAGATE / h.machine, ignore_errors=True)
        targets = self.prepare_cgroups(h, cpus)
        d = self.host_dir(h)
        cmd = [
            "systemd-nspawn", "--boot", f"--directory={self.merged(h)}", f"--machine={h.machine}",
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
            raise StepFailed(f"systemd-nspawn exited {p.returncode} at once:\n{self.console_tail(h)}")
        self.log(f"    pid {p.pid}, cpus {cpus or 'all (not pinned)'}")

    def console_tail(self, h: Host, n: int = 30) -> str:
        try:
            return "\n".join((self.host_dir(h) / "console.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no console.log)"

    def wait_host(self, h: Host, quick: bool = False) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        last = ""
        while True:
            if not self.host_pid(h):
                raise StepFailed(f"{h.machine} stopped while booting; console:\n{self.console_tail(h)}")
            p = self.ssh(h, "true", timeout=15)
            if p.returncode == 0:
                break
            last = (p.stderr or "").strip()
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"no SSH on {h.address} after {BOOT_TIMEOUT_S} s: {last}\n{self.console_tail(h)}"
                )
            time.sleep(0.5)
        remaining = max(10, deadline - time.monotonic())
        p = self.ssh(
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
                self.log(f"    {h.name} ({h.address}): running")
            return
        failed = self.ssh(h, "systemctl", "--failed", "--no-legend", "--plain").stdout
        raise StepFailed(f"{h.name}: systemd is '{state or p.returncode}', failed units:\n{failed}")

    def write_inventory(self) -> None:
        text = inventory_text(self.hosts, self.key, self.known_hosts)
        self.inventory.parent.mkdir(parents=True, exist_ok=True)
        if not self.inventory.exists() or self.inventory.read_text() != text:
            self.inventory.write_text(text)

    # ------------------------------------------------------------------ status
    def status(self) -> int:
        ok = True
        plan_ok = self.bridge_up()
        ok &= plan_ok
        print(f"bridge {BRIDGE} {BRIDGE_ADDRESS}/{PREFIX_LEN}: {'up' if plan_ok else 'DOWN'}")
        apid = self.acng_pid()
        aport = self.port_open(BRIDGE_ADDRESS, ACNG_PORT) if plan_ok else False
        ok &= bool(apid and aport)
        print(
            f"apt-cacher-ng {BRIDGE_ADDRESS}:{ACNG_PORT}: "
            + (f"running (pid {apid})" if apid and aport else f"NOT RUNNING (pid {apid}, port {aport})")
        )
        built = (self.base_path() / ".offlab-complete").exists()
        print(f"base: {self.base_path()} {'(cached)' if built else '(not built)'}")
        print(f"{'host':8} {'address':13} {'pid':>7} {'process':8} {'systemd':10} cpus")
        for h in self.hosts:
            pid = self.host_pid(h)
            state = "-"
            if pid:
                p = self.ssh(h, "systemctl", "is-system-running", timeout=10)
                state = (p.stdout or "").strip() or f"ssh:{p.returncode}"
            pin = self.cpuset_of(pid) if pid else "-"
            up = bool(pid) and state == "running"
            ok &= up
            proc = "running" if pid else "STOPPED"
            print(f"{h.name:8} {h.address:13} {pid or '-':>7} {proc:8} {state:10} {pin}")
        print("lab: " + ("up" if ok else "NOT (fully) up"))
        return 0 if ok else 1

    @staticmethod
    def cpuset_of(pid: int) -> str:
        try:
            for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
                _, ctrl, path = line.split(":", 2)
                if "cpuset" in ctrl.split(","):
                    cpus = (
                        (CGROUP_ROOT / "cpuset" / path.lstrip("/") / "cpuset.effective_cpus")
                        .read_text()
                        .strip()
                    )
                    return f"{cpus} ({path})" if path != "/" else f"{cpus} (not pinned)"
        except OSError:
            pass
        return "?"

    # ------------------------------------------------------------------ down
    def down(self, purge: bool = False) -> None:
        with self.step("check prerequisites"):
            if os.geteuid() != 0:
                raise StepFailed("labctl must run as root")
        with self.locked():
            with self.step("hosts: SIGTERM"):  # all at once, so that they halt in parallel
                for h in self.hosts:
                    for pid in self.nspawn_pids(h):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGTERM)
            for h in self.hosts:
                with self.step(f"host {h.name}: stop"):
                    self.stop_host(h)
            for h in self.hosts:
                with self.step(f"host {h.name}: remove"):
                    self.remove_host(h)
            with self.step("apt-cacher-ng: stop"):
                self.stop_acng()
            with self.step(f"bridge {BRIDGE}: remove"):
                if self.run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
                    self.run(["ip", "link", "del", BRIDGE])
            with self.step("inventory: remove"):
                self.inventory.unlink(missing_ok=True)
                self.known_hosts.unlink(missing_ok=True)
                shutil.rmtree(self.state / "hosts", ignore_errors=True)
            if purge:
                with self.step("purge: base and apt cache"):
                    for p in self.cache.glob("base-*"):
                        if self.base_in_use(p):
                            raise StepFailed(f"{p} is still mounted")
                    shutil.rmtree(self.cache, ignore_errors=True)
                    shutil.rmtree(self.acng_dir, ignore_errors=True)
        self.log("lab down" + (" (base and apt cache purged)" if purge else " (base cache kept)"))

    def cgroup_pids(self, h: Host) -> set[int]:
        pids: set[int] = set()
        for top in self.cgroup_dirs(h):
            if top.exists():
                for procs in top.rglob("cgroup.procs"):
                    with contextlib.suppress(OSError):
                        pids.update(int(x) for x in procs.read_text().split())
        return pids

    @staticmethod
    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # a zombie is dead for our purposes
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        return True

    def stop_host(self, h: Host) -> None:
        pids = self.nspawn_pids(h)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)  # systemd-nspawn halts the host cleanly
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(self.alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in pids:
            if self.alive(pid):
                self.log(f"    {h.machine}: pid {pid} did not stop in {STOP_TIMEOUT_S} s, SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        # anything left in the host's cgroups (only ever processes of this host)
        for _ in range(50):
            rest = [p for p in self.cgroup_pids(h) if self.alive(p)]
            if not rest:
                break
            for pid in rest:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        else:
            raise StepFailed(f"processes left in {h.machine}'s cgroups: {rest}")
        self.wait_reaped(pids)
        if pids:
            self.log(f"    stopped pid {', '.join(map(str, pids))}")

    def remove_cgroups(self, h: Host) -> None:
        for top in self.cgroup_dirs(h):
            if not top.exists():
                continue
            for d in sorted(
                (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
            ):
                d.rmdir()
            top.rmdir()

    def remove_host(self, h: Host) -> None:
        m = self.merged(h)
        for _ in range(20):
            if not self.is_mounted(m):
                break
            if self.run(["umount", str(m)], check=False).returncode != 0:
                time.sleep(0.25)
        else:
            self.run(["umount", "--lazy", str(m)])
        with contextlib.suppress(FileNotFoundError):
            self.remove_cgroups(h)
        shutil.rmtree(NSPAWN_PROPAGATE / h.machine, ignore_errors=True)
        shutil.rmtree(self.host_dir(h), ignore_errors=True)

    def stop_acng(self) -> None:
        pid = self.acng_pid()
        if not pid:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while self.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.wait_reaped([pid])
        (self.acng_dir / "pid").unlink(missing_ok=True)

    @staticmethod
    def wait_reaped(pids: list[int], timeout: float = 10) -> None:
        """Detached processes are reaped by PID 1, which here does so every few seconds: wait for it,
        so that `ps` shows nothing of the lab once down returns."""
        deadline = time.monotonic() + timeout
        while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="lab/labctl", description="the offload-lab local lab")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every command")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="bring the lab up (idempotent)")
    sub.add_parser("status", help="show the lab's state; exit 0 only if all of it is up")
    d = sub.add_parser("down", help="stop and remove the hosts, bridge and apt-cacher-ng")
    d.add_argument("--purge", action="store_true", help="also remove the cached base and apt cache")
    sub.add_parser("clean", help="same as down --purge")
    sub.add_parser("inventory", help="(re)write inventory/lab/hosts.yml only")
    args = ap.parse_args(argv)
    lab = Lab(verbose=args.verbose)
    try:
        if args.cmd == "up":
            lab.up()
        elif args.cmd == "status":
            return lab.status()
        elif args.cmd in ("down", "clean"):
            lab.down(purge=args.cmd == "clean" or args.purge)
        elif args.cmd == "inventory":
            lab.write_inventory()
    except StepFailed as e:
        print(f"labctl {args.cmd}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"labctl {args.cmd}: interrupted", file=sys.stderr)
        return 130
    return 0
