"""The real lab, end to end: up, status, real SSH as a cloud image's login (admin with passwordless
sudo, no root login), host-to-host TCP, apt through the proxy, CPU pinning, up again is a no-op,
down leaves nothing behind, a failure names its step.

Needs root and takes a minute or two (the base image is cached in /var/cache/offload-lab). It
leaves the lab DOWN: run `lab/labctl up` afterwards if you need it. Run: `pytest -m lab tests/lab`.
"""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from lab import cgroups, hosts, plan
from lab.locallab import LocalLab

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
LABCTL = str(REPO / "lab" / "labctl")
HOSTS = plan.address_plan()
BY_NAME = {h.name: h for h in HOSTS}


def labctl(*args, env=None, timeout=900):
    return subprocess.run(
        [LABCTL, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


@pytest.fixture(scope="module")
def lab():
    t0 = time.monotonic()
    p = labctl("up")
    assert p.returncode == 0, p.stdout + p.stderr
    print(f"lab up took {time.monotonic() - t0:.1f} s")
    return LocalLab()


def ssh(lab, name, cmd, timeout=120):
    return subprocess.run(
        hosts.ssh_cmd(lab, BY_NAME[name], "sh", "-c", f"'{cmd}'"),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def lab_processes():
    """Live (non-zombie) processes of the lab: nspawn, the lab's apt-cacher-ng, anything in its cgroups."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            args = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cgroups = (d / "cgroup").read_text()
        except OSError:
            continue
        if state != "Z" and (
            "--machine=offlab-" in args or ".lab/acng/conf" in args or "/offlab-" in cgroups
        ):
            found.append((int(d.name), args))
    return found


def test_status_says_up(lab):
    p = labctl("status")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("ssh: answers  systemd: running") == 4, p.stdout
    assert p.stdout.rstrip().endswith("lab: up")


def test_inventory_written(lab):
    import yaml

    inv = yaml.safe_load((REPO / "inventory/lab/hosts.yml").read_text())
    assert list(inv["all"]["children"]) == ["broker", "gateway", "core", "loadgen"]


@pytest.mark.parametrize("name", list(BY_NAME))
def test_real_ssh_and_systemd(lab, name):
    p = ssh(lab, name, "hostname; systemctl is-system-running; cat /etc/machine-id")
    assert p.returncode == 0, p.stderr
    hostname, state, machine_id = p.stdout.split()
    assert (hostname, state) == (name, "running")
    assert len(machine_id) == 32


@pytest.mark.parametrize("name", list(BY_NAME))
def test_login_is_admin_with_passwordless_sudo_and_root_may_not_log_in(lab, name):
    h = BY_NAME[name]
    p = ssh(lab, name, "id -un; sudo -n id -un; sudo -n sshd -T | grep -i ^permitrootlogin")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:3] == ["admin", "root", "permitrootlogin no"], p.stdout
    as_root = [
        f"root@{h.address}" if arg == f"{plan.LOGIN_USER}@{h.address}" else arg
        for arg in hosts.ssh_cmd(lab, h, "true")
    ]
    assert f"root@{h.address}" in as_root
    refused = subprocess.run(as_root, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused.stderr


def test_known_hosts_holds_each_hosts_own_keys_and_ssh_checks_them(lab):
    """Trust on creation: the keys in .lab/ssh/known_hosts are the ones on each host's own disk;
    every ssh above passed StrictHostKeyChecking=yes against them; a wrong key is refused."""
    trusted = lab.known_hosts.read_text().splitlines()
    for h in HOSTS:
        on_disk = sorted(
            " ".join([h.address, *p.read_text().split()[:2]])
            for p in lab.merged(h).glob(plan.HOST_PUBLIC_KEYS_GLOB)
        )
        assert len(on_disk) == 3 and sorted(x for x in trusted if x.split()[0] == h.address) == on_disk
    assert "StrictHostKeyChecking=yes" in hosts.ssh_cmd(lab, HOSTS[0], "true")
    wrong = lab.state / "wrong_known_hosts"
    wrong.write_text("".join(f"{h.address} {lab.key.with_suffix('.pub').read_text()}" for h in HOSTS))
    argv = [
        f"UserKnownHostsFile={wrong}" if a.startswith("UserKnownHostsFile=") else a
        for a in hosts.ssh_cmd(lab, BY_NAME["core"], "true")
    ]
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    wrong.unlink()
    assert refused.returncode == 255 and "Host key verification failed" in refused.stderr, refused.stderr


def test_machine_ids_differ(lab):
    ids = {ssh(lab, n, "cat /etc/machine-id").stdout.strip() for n in BY_NAME}
    assert len(ids) == 4


def test_gateway_reaches_broker_and_controller(lab):
    p = ssh(
        lab,
        "gateway",
        'timeout 5 bash -c "</dev/tcp/broker/22" && echo ok-broker; '
        'timeout 5 bash -c "</dev/tcp/10.77.77.1/3142" && echo ok-proxy',
    )
    assert "ok-broker" in p.stdout and "ok-proxy" in p.stdout, p.stdout + p.stderr


def test_no_route_out(lab):
    p = ssh(lab, "core", "ip route")
    assert "default" not in p.stdout


def test_apt_through_the_proxy(lab):
    p = ssh(
        lab,
        "core",
        "sudo -n apt-get update 2>&1 && sudo -n apt-get install -y --download-only -q hello 2>&1",
        timeout=300,
    )
    assert p.returncode == 0, p.stdout[-3000:]
    assert "deb.debian.org/debian-security" in p.stdout


def test_proxy_serves_only_debian(lab):
    # a non-Debian URL (a lab host, so nothing leaves the lab even if this ever failed) is refused
    with socket.create_connection(("10.77.77.1", 3142), timeout=10) as c:
        c.sendall(b"GET http://10.77.77.11:22/ HTTP/1.1\r\nHost: 10.77.77.11:22\r\nConnection: close\r\n\r\n")
        status = c.recv(200).split(b"\r\n", 1)[0]
    assert b" 403 " in status, status


def test_loadgen_has_a_cpu_of_its_own(lab):
    ncpu = len(cgroups.host_cpus())
    assert ncpu >= 2, "the lab gives the loadgen a CPU of its own: it needs a 2+ CPU machine"
    assert ssh(lab, "loadgen", "nproc").stdout.strip() == "1"
    for name in ("broker", "gateway", "core"):
        assert ssh(lab, name, "nproc").stdout.strip() == str(ncpu - 1)
    # root inside the host cannot widen the pin
    p = ssh(lab, "loadgen", f"sudo -n taskset -p -c 0-{ncpu - 1} $$ >/dev/null 2>&1; nproc")
    assert p.stdout.strip().splitlines()[-1] == "1"


def test_up_again_is_a_no_op(lab):
    before = sorted(lab_processes())
    nspawn_before = {h.name: hosts.host_pid(lab, h) for h in HOSTS}
    p = labctl("up")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "already running" in p.stdout
    assert {h.name: hosts.host_pid(lab, h) for h in HOSTS} == nspawn_before
    assert len([a for _, a in lab_processes() if a.startswith("systemd-nspawn")]) == 4
    assert len(before) > 4


def test_failure_names_the_step(lab, tmp_path):
    not_a_dir = tmp_path / "cache-is-a-file"
    not_a_dir.write_text("")
    p = labctl("up", env={"OFFLAB_CACHE": str(not_a_dir)})
    assert p.returncode != 0
    assert "step 'base image' failed" in p.stderr


def test_down_leaves_nothing_behind(lab):
    p = labctl("down")
    assert p.returncode == 0, p.stdout + p.stderr
    assert subprocess.run(["ip", "link", "show", "offlab0"], capture_output=True).returncode != 0
    assert "offlab" not in subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    mounts = Path("/proc/self/mountinfo").read_text()
    assert "offlab" not in mounts and "/.lab/" not in mounts
    assert not list(Path("/sys/fs/cgroup").glob("*/offlab*"))
    assert not list(Path("/run/systemd/nspawn/propagate").glob("offlab-*"))
    assert lab_processes() == []
    assert not (REPO / ".lab" / "hosts").exists()
    assert not (REPO / "inventory/lab/hosts.yml").exists()
    assert labctl("status").returncode == 1
    assert labctl("down").returncode == 0  # twice is fine
