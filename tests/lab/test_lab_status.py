"""The wording of `lab/labctl status` (lab.status's pure *_line functions)."""

import re
from pathlib import Path

import pytest

from lab import plan, status

BROKER = plan.address_plan()[0]
CONSOLE = Path("/repo/.lab/hosts/broker/console.log")
FIX = "`lab/labctl up`"


def test_a_host_that_is_up():
    line = status.host_line(BROKER, 1234, "running", "0 (cpuset /offlab-broker)", CONSOLE)
    assert line == (
        "broker   10.77.77.11  running (pid 1234)  ssh: answers  systemd: running"
        "  cpus: 0 (cpuset /offlab-broker)"
    )
    assert status.host_up(1234, "running")


def test_a_stopped_host_names_the_command_that_fixes_it():
    line = status.host_line(BROKER, None, None, "-", CONSOLE)
    assert line == f"broker   10.77.77.11  stopped; {FIX} fixes it"
    assert not status.host_up(None, None)


def test_a_host_without_ssh_points_at_its_console():
    line = status.host_line(BROKER, 1234, None, "0 (cpuset /offlab-broker)", CONSOLE)
    assert "running (pid 1234)" in line and "ssh: no answer" in line and str(CONSOLE) in line
    assert not status.host_up(1234, None)


def test_a_degraded_host_is_not_up():
    assert "systemd: degraded" in status.host_line(BROKER, 1234, "degraded", "0", CONSOLE)
    assert not status.host_up(1234, "degraded")


def test_acng_bridge_and_verdict():
    assert status.acng_line(7, True) == "apt-cacher-ng 10.77.77.1:3142: running (pid 7)"
    assert status.acng_line(None, False) == f"apt-cacher-ng 10.77.77.1:3142: stopped; {FIX} fixes it"
    assert "not answering on port 3142" in status.acng_line(7, False)
    assert status.bridge_line(True) == "bridge offlab0 10.77.77.1/24: up"
    assert status.bridge_line(False).endswith(f"down; {FIX} fixes it")
    assert status.base_line(Path("/c/base-x"), True) == "base: /c/base-x (cached)"
    assert status.verdict_line(True) == "lab: up"
    assert FIX in status.verdict_line(False)


@pytest.mark.parametrize("pid", [None, 1234])
@pytest.mark.parametrize("answers", [False, True])
@pytest.mark.parametrize("systemd", [None, "running", "starting"])
def test_no_raw_python_values(pid, answers, systemd):
    lines = [
        status.bridge_line(answers),
        status.acng_line(pid, answers),
        status.base_line(Path("/c/base-x"), answers),
        status.host_line(BROKER, pid, systemd, "-", CONSOLE),
        status.verdict_line(answers),
    ]
    for line in lines:
        assert not re.search(r"\b(None|True|False)\b", line), line


def test_status_names_the_profile_and_its_up_command():
    hosts = plan.address_plan(profile="cluster")
    assert status.profile_line("cluster", hosts).startswith("profile: cluster (9 hosts: broker1, broker2,")
    fix = status.fix_for("cluster")
    line = status.host_line(hosts[0], None, None, "-", Path("c"), fix)
    assert "`lab/labctl up --profile cluster` fixes it" in line
    assert status.verdict_line(False, status.fix_for("default")).endswith("`lab/labctl up` fixes it")


def test_status_names_the_release_and_its_up_command():
    hosts = plan.address_plan()
    assert status.profile_line("default", hosts, "bookworm").endswith("; release: bookworm (Debian 12)")
    assert status.fix_for("default", "bookworm") == "`lab/labctl up --release bookworm` fixes it"
    assert (
        status.fix_for("cluster", "bookworm")
        == "`lab/labctl up --profile cluster --release bookworm` fixes it"
    )
    assert status.fix_for("default", "trixie") == "`lab/labctl up` fixes it"
