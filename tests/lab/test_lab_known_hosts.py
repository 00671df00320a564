"""Trust on creation: labctl writes each host's own public host keys (from its disk) into the lab's
known_hosts, and SSH checks them strictly. Pure text (lab/plan.py) and the file side (lab/hosts.py)
on a temporary directory with the real ssh-keygen; no lab needed."""

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab import hosts, plan
from lab.locallab import StepFailed

BROKER, CORE = plan.address_plan()[0], plan.address_plan()[2]
ED_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBroker root@build\n"
RSA_KEY = "ssh-rsa AAAAB3NzaC1yc2EBroker root@build\n"


def test_known_hosts_text_lists_the_hosts_keys_without_their_comments():
    text = plan.known_hosts_text("", BROKER.address, [RSA_KEY, ED_KEY])
    assert text == (
        "10.77.77.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBroker\n10.77.77.11 ssh-rsa AAAAB3NzaC1yc2EBroker\n"
    )


def test_known_hosts_text_replaces_only_that_hosts_lines():
    existing = (
        "10.77.77.11 ssh-ed25519 OLDKEY\n"
        "10.77.77.13 ssh-ed25519 COREKEY\n"
        "broker,10.77.77.11 ssh-rsa OLDRSA\n"
        "10.77.77.111 ssh-ed25519 OTHERHOST\n"
    )
    text = plan.known_hosts_text(existing, BROKER.address, [ED_KEY])
    assert "OLDKEY" not in text and "OLDRSA" not in text
    assert "10.77.77.13 ssh-ed25519 COREKEY\n" in text
    assert "10.77.77.111 ssh-ed25519 OTHERHOST\n" in text, "a longer address that merely starts alike stays"
    assert text.count("10.77.77.11 ") == 1


@pytest.mark.parametrize("keys", [[], ["garbage"]])
def test_known_hosts_text_refuses_no_or_bad_keys(keys):
    with pytest.raises(ValueError):
        plan.known_hosts_text("", BROKER.address, keys)


@pytest.fixture
def fake_lab(tmp_path):
    """What trust_host_keys and ensure_host_keys use of LocalLab: merged(h), known_hosts, run."""
    if not shutil.which("ssh-keygen"):
        pytest.fail("ssh-keygen is needed (openssh-client, deps/debian-packages.txt)")

    def run(cmd, check=True, **kw):
        return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)

    def merged(h):
        root = tmp_path / h.name / "merged"
        (root / "etc/ssh").mkdir(parents=True, exist_ok=True)
        return root

    return SimpleNamespace(merged=merged, known_hosts=tmp_path / "ssh" / "known_hosts", run=run)


def fingerprints_in_disk(lab, h) -> set[str]:
    out = set()
    for pub in Path(lab.merged(h)).glob(plan.HOST_PUBLIC_KEYS_GLOB):
        out.add(
            subprocess.run(
                ["ssh-keygen", "-l", "-f", str(pub)], capture_output=True, text=True
            ).stdout.split()[1]
        )
    return out


def fingerprints_trusted(lab, address: str) -> set[str]:
    p = subprocess.run(
        ["ssh-keygen", "-l", "-F", address, "-f", str(lab.known_hosts)], capture_output=True, text=True
    )
    return {line.split()[2] for line in p.stdout.splitlines() if line and not line.startswith("#")}


def test_a_new_hosts_keys_are_made_on_its_disk_and_trusted(fake_lab):
    fake_lab.known_hosts.parent.mkdir()
    for h in (BROKER, CORE):
        hosts.ensure_host_keys(fake_lab, h)
        hosts.trust_host_keys(fake_lab, h)
    for h in (BROKER, CORE):
        on_disk = fingerprints_in_disk(fake_lab, h)
        assert len(on_disk) == 3  # rsa, ecdsa, ed25519
        assert fingerprints_trusted(fake_lab, h.address) == on_disk
    assert fingerprints_in_disk(fake_lab, BROKER).isdisjoint(fingerprints_in_disk(fake_lab, CORE))


def test_a_host_keeps_its_keys_and_a_recreated_host_replaces_them(fake_lab):
    fake_lab.known_hosts.parent.mkdir()
    hosts.ensure_host_keys(fake_lab, BROKER)
    hosts.trust_host_keys(fake_lab, BROKER)
    hosts.ensure_host_keys(fake_lab, CORE)
    hosts.trust_host_keys(fake_lab, CORE)
    first = fingerprints_trusted(fake_lab, BROKER.address)
    hosts.ensure_host_keys(fake_lab, BROKER)  # a restart: the disk keeps its keys
    hosts.trust_host_keys(fake_lab, BROKER)
    assert fingerprints_trusted(fake_lab, BROKER.address) == first
    shutil.rmtree(fake_lab.merged(BROKER))  # recreated: a new disk, new keys
    hosts.ensure_host_keys(fake_lab, BROKER)
    hosts.trust_host_keys(fake_lab, BROKER)
    now = fingerprints_trusted(fake_lab, BROKER.address)
    assert now == fingerprints_in_disk(fake_lab, BROKER) and now.isdisjoint(first)
    assert fingerprints_trusted(fake_lab, CORE.address) == fingerprints_in_disk(fake_lab, CORE)


def test_a_host_without_keys_on_its_disk_is_a_failed_step(fake_lab):
    with pytest.raises(StepFailed, match="broker: no SSH host keys"):
        hosts.trust_host_keys(fake_lab, BROKER)


def test_ssh_checks_host_keys_strictly(fake_lab):
    argv = hosts.ssh_cmd(SimpleNamespace(key=Path("/k"), known_hosts=Path("/kh")), BROKER, "true")
    assert "StrictHostKeyChecking=yes" in argv and "UserKnownHostsFile=/kh" in argv
