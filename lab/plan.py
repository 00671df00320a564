"""The lab's plan: names, addresses, CPU split and the text of every file the lab writes.

Pure: nothing here reads or changes the machine, so all of it is unit-tested
(tests/lab/test_lab_plan.py). The modules that act on the machine take their values from here.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

BRIDGE = "offlab0"
NETWORK_PREFIX = "10.77.77"
BRIDGE_ADDRESS = f"{NETWORK_PREFIX}.1"
PREFIX_LEN = 24
ACNG_PORT = 3142
MACHINE_PREFIX = "offlab-"
# The inventory groups (docs/design.md); a host's group is its name without a trailing number.
GROUPS = ("broker", "gateway", "core", "loadgen")
LOADGEN = "loadgen"
# Profiles: host name -> last octet; order is the order hosts are started and listed. One profile
# is up at a time. "default" is one host per group; "cluster" shows the scale-out (issue 13): a
# 3-node RabbitMQ cluster and two of each other part, still on the one bridge and the same CPUs.
DEFAULT_PROFILE = "default"
PROFILES = {
    DEFAULT_PROFILE: {"broker": 11, "gateway": 12, "core": 13, "loadgen": 14},
    "cluster": {
        "broker1": 21, "broker2": 22, "broker3": 23,
        "gateway1": 31, "gateway2": 32,
        "core1": 41, "core2": 42,
        "loadgen1": 51, "loadgen2": 52,
    },
}  # fmt: skip
HOST_OCTETS = PROFILES[DEFAULT_PROFILE]

# Debian releases the lab can run (codename -> what it is); one release per lab, recorded in
# .lab/release like the profile. trixie (Debian 13, RabbitMQ 4.0) is what a team installs today;
# bookworm (Debian 12, RabbitMQ 3.10, out of RabbitMQ's support since 2023) is the compared target.
RELEASES = {"trixie": "Debian 13", "bookworm": "Debian 12"}
DEFAULT_RELEASE = "trixie"
VARIANT = "minbase"
INCLUDE = ("openssh-server", "python3", "systemd", "systemd-sysv", "dbus", "iproute2", "sudo")
# bump when the base configuration below changes in a way the file contents do not show
BASE_RECIPE_VERSION = 2
# The hosts log in like a cloud image's: this user with the lab's key and passwordless sudo;
# root may not log in over SSH. Ansible uses `become`, fab `sudo -n`, where root is needed.
LOGIN_USER = "admin"
LOGIN_UID = 1000
SUDOERS_FILE = "etc/sudoers.d/offlab-login"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# the URLs the hosts' apt uses; apt-cacher-ng maps them to the same URLs upstream
HOST_DEBIAN_URI = "http://deb.debian.org/debian"
HOST_SECURITY_URI = "http://deb.debian.org/debian-security"


@dataclass(frozen=True)
class LabHost:
    """One host of the lab (a systemd-nspawn container on the bridge)."""

    name: str
    address: str

    @property
    def machine(self) -> str:
        """The container's machine name (systemd-nspawn --machine, cgroup names)."""
        return MACHINE_PREFIX + self.name

    @property
    def inventory_name(self) -> str:
        """Ansible host name; unlike the host's own hostname it differs from its group's name."""
        return "lab-" + self.name

    @property
    def group(self) -> str:
        """The inventory group: the name without its number (broker2 -> broker)."""
        return group_of(self.name)


def group_of(name: str) -> str:
    return name.rstrip("0123456789")


def address_plan(octets: dict[str, int] | None = None, profile: str = DEFAULT_PROFILE) -> list[LabHost]:
    """The profile's hosts (or those of `octets`) with their static addresses, in start order."""
    if octets is None:
        if profile not in PROFILES:
            raise ValueError(f"no lab profile {profile!r} (profiles: {', '.join(PROFILES)})")
        octets = PROFILES[profile]
    seen = set()
    hosts = []
    for name, octet in octets.items():
        if not 2 <= octet <= 254 or octet in seen:
            raise ValueError(f"bad or duplicate host octet {octet} for {name}")
        seen.add(octet)
        hosts.append(LabHost(name, f"{NETWORK_PREFIX}.{octet}"))
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
    """The load generators (the hosts of the loadgen group) get the last CPU, every other host
    shares the rest: the services never compete with k6 for a CPU.

    None means "do not pin" (a single CPU cannot be split)."""
    cpus = sorted(set(cpus))
    if len(cpus) < 2:
        return None
    servers = format_cpu_list(cpus[:-1])
    return {n: (str(cpus[-1]) if group_of(n) == loadgen else servers) for n in names}


def profile_group(profile: str) -> str:
    """The inventory group holding every host of a profile other than the default, so that its
    settings live in inventory/lab/group_vars/<group>.yml (e.g. lab_cluster: quorum queues)."""
    return f"lab_{profile}"


def inventory_text(
    hosts: list[LabHost],
    key_file: Path,
    known_hosts: Path,
    profile: str = DEFAULT_PROFILE,
    release: str = DEFAULT_RELEASE,
) -> str:
    """inventory/lab/hosts.yml: the four groups (a host's group is its name without its number;
    host order in a group is the index), real SSH as LOGIN_USER with the lab key, checking host
    keys against the lab's known_hosts (labctl writes each host's keys there). A profile other
    than the default also puts the four groups into its own group (profile_group).
    offload_os_release names the hosts' release, which the roles' preflight checks."""
    common = f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
    lines = [
        "# Written by `lab/labctl up` (git-ignored); do not edit, it is rewritten on every up.",
        "all:",
        "  vars:",
        f"    offload_os_release: {check_release(release)}",
        "  children:",
    ]
    for group in GROUPS:
        members = [h for h in hosts if h.group == group]
        if not members:
            continue
        lines += [f"    {group}:", "      hosts:"]
        for h in members:
            lines += [
                f"        {h.inventory_name}:",
                f"          ansible_host: {h.address}",
                f"          ansible_user: {LOGIN_USER}",
                f"          ansible_ssh_private_key_file: {json.dumps(str(key_file))}",
                f"          ansible_ssh_common_args: {json.dumps(common)}",
                "          ansible_python_interpreter: /usr/bin/python3",
                f"          offload_private_address: {h.address}",
            ]
    if profile != DEFAULT_PROFILE:
        lines += [f"    {profile_group(profile)}:", "      children:"]
        lines += [f"        {group}:" for group in GROUPS if any(h.group == group for h in hosts)]
    return "\n".join(lines) + "\n"


def ssh_config_text(hosts: list[LabHost], key_file: Path, known_hosts: Path, config: Path) -> str:
    """.lab/ssh/config: `ssh -F .lab/ssh/config broker` (or lab-broker, or its address) logs in as
    LOGIN_USER (`sudo -n` for root)."""
    lines = [f"# ssh -F {config} {hosts[0].name}"]
    for h in hosts:
        lines += [
            f"Host {h.name} {h.inventory_name} {h.address}",
            f"  HostName {h.address}",
            f"  User {LOGIN_USER}",
            f"  IdentityFile {key_file}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {known_hosts}",
            "  StrictHostKeyChecking yes",
        ]
    return "\n".join(lines) + "\n"


# a host's public host keys in its own filesystem (made by hosts.ensure_host_keys before it boots)
HOST_PUBLIC_KEYS_GLOB = "etc/ssh/ssh_host_*_key.pub"


def known_hosts_text(existing: str, address: str, public_keys: list[str]) -> str:
    """The lab's known_hosts with the host at `address` trusted for exactly `public_keys` (the
    contents of its ssh_host_*_key.pub files): its old lines go, every other host's stay."""
    kept = [line for line in existing.splitlines() if line.strip() and address not in known_hosts_names(line)]
    added = []
    for text in public_keys:
        fields = text.split()
        if len(fields) < 2:
            raise ValueError(f"not an SSH public key: {text!r}")
        added.append(f"{address} {fields[0]} {fields[1]}")
    if not added:
        raise ValueError(f"no host keys for {address}")
    return "\n".join(kept + sorted(added)) + "\n"


def known_hosts_names(line: str) -> list[str]:
    """The host names/addresses a known_hosts line is for ([] for comments and markers)."""
    fields = line.split()
    if not fields or fields[0].startswith(("#", "@")):
        return []
    return fields[0].split(",")


def etc_hosts_text(hosts: list[LabHost], me: str) -> str:
    """A host's /etc/hosts: itself, the controller (the bridge) and every other host by name."""
    lines = ["127.0.0.1\tlocalhost", f"127.0.1.1\t{me}", f"{BRIDGE_ADDRESS}\tcontroller"]
    lines += [f"{h.address}\t{h.name}" for h in hosts if h.name != me] + [
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]
    return "\n".join(lines) + "\n"


def host_network_text(address: str) -> str:
    """A host's systemd-networkd unit for host0 (its end of the bridge)."""
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


def check_release(release: str) -> str:
    if release not in RELEASES:
        raise ValueError(f"no lab release {release!r} (releases: {', '.join(RELEASES)})")
    return release


def base_files(release: str = DEFAULT_RELEASE) -> dict[str, str]:
    """Files written into the base (path -> content; content '->X' makes a symlink to X)."""
    suite = check_release(release)
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
            f"Types: deb\nURIs: {HOST_DEBIAN_URI}\nSuites: {suite} {suite}-updates\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            f"Types: deb\nURIs: {HOST_SECURITY_URI}\nSuites: {suite}-security\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        ),
        "etc/resolv.conf": "# offload-lab: no DNS inside the lab; names are in /etc/hosts\n",
        "etc/ssh/sshd_config.d/10-offlab-login.conf": (
            f"# offload-lab: like a cloud image, log in as {LOGIN_USER} and use sudo\nPermitRootLogin no\n"
        ),
        SUDOERS_FILE: (
            f"# offload-lab: the login user's passwordless sudo, like a cloud image's\n"
            f"{LOGIN_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n"
        ),
        # periodic apt runs would take the dpkg lock in the middle of provisioning
        "etc/systemd/system/apt-daily.timer": "->/dev/null",
        "etc/systemd/system/apt-daily-upgrade.timer": "->/dev/null",
    }


# files of base_files() that need another mode than 0644 (sudo ignores a sudoers file it finds unsafe)
BASE_FILE_MODES = {SUDOERS_FILE: 0o440}


def base_recipe(mirror: str, release: str = DEFAULT_RELEASE) -> dict:
    """Everything the base image is made from; its hash names the cached base."""
    return {
        "version": BASE_RECIPE_VERSION,
        "suite": check_release(release),
        "variant": VARIANT,
        "include": list(INCLUDE),
        "mirror": mirror,
        "files": base_files(release),
        "modes": {path: oct(mode) for path, mode in BASE_FILE_MODES.items()},
        "login_user": {"name": LOGIN_USER, "uid": LOGIN_UID},
        "enable": ["systemd-networkd"],
    }


def recipe_hash(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def acng_config_text(cache_dir: Path, log_dir: Path, run_dir: Path) -> str:
    """acng.conf of the lab's own apt-cacher-ng (bound to the bridge, Debian only)."""
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


# the upstream of each Remap- line above (file name in the config directory -> content)
ACNG_BACKENDS = {
    "backends_debian": "http://deb.debian.org/debian/\n",
    "backends_debian_security": "http://deb.debian.org/debian-security/\n",
}
