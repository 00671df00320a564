"""The real lab's cluster profile: `lab/labctl up --profile cluster` brings up nine hosts on the
one bridge (the load generators alone on the last CPU), status and the inventory say so, the
default profile is refused while it is up, and `down` (no profile given) takes it all away.

Needs root; leaves the lab DOWN. Run: `pytest -m lab tests/lab`.
"""

import subprocess
from pathlib import Path

import pytest
import yaml

from lab import cgroups, hosts, plan
from lab.locallab import LocalLab

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
LABCTL = str(REPO / "lab" / "labctl")
HOSTS = plan.address_plan(profile="cluster")


def labctl(*args, timeout=900):
    return subprocess.run([LABCTL, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def lab():
    down = labctl("down")  # whichever profile was up
    assert down.returncode == 0, down.stdout + down.stderr
    p = labctl("up", "--profile", "cluster")
    assert p.returncode == 0, p.stdout + p.stderr
    yield LocalLab()
    labctl("down")


def ssh(lab, h, cmd):
    return subprocess.run(
        hosts.ssh_cmd(lab, h, "sh", "-c", f"'{cmd}'"),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_the_profile_is_recorded_and_status_says_so(lab):
    assert lab.profile == "cluster" and [h.name for h in lab.hosts] == [h.name for h in HOSTS]
    p = labctl("status")
    assert p.returncode == 0, p.stdout
    assert "profile: cluster (9 hosts: broker1, broker2, broker3," in p.stdout
    assert p.stdout.rstrip().endswith("lab: up")


def test_the_inventory_holds_every_host_in_its_group(lab):
    inventory = yaml.safe_load((REPO / "inventory/lab/hosts.yml").read_text())["all"]["children"]
    assert {g: list(inventory[g]["hosts"]) for g in plan.GROUPS} == {
        g: [h.inventory_name for h in HOSTS if h.group == g] for g in plan.GROUPS
    }
    assert list(inventory["lab_cluster"]["children"]) == list(plan.GROUPS)


def test_each_host_is_itself_and_knows_the_others(lab):
    for h in HOSTS:
        other = HOSTS[-1] if h != HOSTS[-1] else HOSTS[0]
        p = ssh(lab, h, f"hostname; getent hosts {other.name} | cut -d\\  -f1")
        assert p.returncode == 0, (h.name, p.stderr)
        name, address = p.stdout.split()
        assert name == h.name and address == other.address, (h.name, p.stdout)


def test_loadgens_share_the_last_cpu_and_services_the_rest(lab):
    ncpu = len(cgroups.host_cpus())
    for h in HOSTS:
        want = "1" if h.group == "loadgen" else str(ncpu - 1)
        assert ssh(lab, h, "nproc").stdout.strip() == want, h.name


def test_the_default_profile_is_refused_while_the_cluster_is_up(lab):
    before = {h.name: hosts.host_pid(lab, h) for h in HOSTS}
    p = labctl("up")
    assert p.returncode == 1
    assert "the cluster profile is up" in p.stderr and "lab/labctl down" in p.stderr, p.stderr
    assert {h.name: hosts.host_pid(lab, h) for h in HOSTS} == before
    assert not any(hosts.nspawn_pids(h) for h in plan.address_plan())


def test_down_takes_the_cluster_away(lab):
    p = labctl("down")
    assert p.returncode == 0, p.stdout + p.stderr
    assert not any(hosts.nspawn_pids(h) for h in HOSTS)
    assert not list(Path("/sys/fs/cgroup").glob("*/offlab*"))
    assert not (REPO / ".lab" / "profile").exists()
    assert not (REPO / "inventory/lab/hosts.yml").exists()
    assert subprocess.run(["ip", "link", "show", "offlab0"], capture_output=True).returncode != 0
