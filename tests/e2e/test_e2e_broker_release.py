"""The lab's hosts run the release the lab was brought up with (lab/labctl up --release; Debian 13
by default), with its RabbitMQ, and every step file of the sweep records the broker's version and
queue settings as the broker itself reports them (offload_lab/services/broker_facts.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SSH_CONFIG = REPO / ".lab" / "ssh" / "config"
INVENTORY = REPO / "inventory" / "lab" / "hosts.yml"
# what each release ships (docs/brokers.md): Debian's rabbitmq-server, and its classic queue version
EXPECTED = {
    "trixie": {"debian": "13", "rabbitmq": "4.0.", "classic_version": 2},
    "bookworm": {"debian": "12", "rabbitmq": "3.10.", "classic_version": 1},
}

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def release() -> str:
    inventory = yaml.safe_load(INVENTORY.read_text())
    name = inventory["all"]["vars"]["offload_os_release"]
    assert name in EXPECTED, name
    return name


def test_the_hosts_run_the_lab_release(release):
    for host in ("broker", "gateway", "core", "loadgen"):
        out = subprocess.run(
            ["ssh", "-F", str(SSH_CONFIG), host, "cat /etc/debian_version"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
        assert out.split(".")[0].strip() == EXPECTED[release]["debian"], (host, out)


def test_every_step_records_the_broker_and_its_queues(steps, release):
    for step in steps:
        facts = step["broker"]["facts"]
        assert facts["rabbitmq_version"].startswith(EXPECTED[release]["rabbitmq"]), facts
        assert facts["erlang_version"], facts
        tasks = facts["queues"]["tasks"]
        assert tasks["type"] == "classic" and tasks["durable"] is True, tasks
        assert tasks["arguments"]["x-dead-letter-exchange"] == "tasks.dlx", tasks
        # 3.10 shows the version once statistics were emitted, which a 10 s step outlasts
        assert tasks["classic_version"] == EXPECTED[release]["classic_version"], tasks
        assert set(facts["queues"]) == {"tasks", "tasks.done", "tasks.dead"}, facts
