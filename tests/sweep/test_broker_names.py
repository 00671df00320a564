"""Renamed queues on a real RabbitMQ (the test broker of scripts/with-test-broker.sh): an
inventory names its own vhost, task, ledger and dead-letter queues, controller user and
management port; fab's clients, built from that inventory, read the task queue's depth, take the
outcome records and look at the dead letters under those names."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import uuid

import pytest
from real_broker import real_broker
from sweep_fakes import RecordingRemote

from offload_lab.hosts import inventory
from offload_lab.run.connections import LabConnections
from offload_lab.services.broker import ManagementAPI, depth_total

STATISTICS_WAIT_S = 15


class EnvlessHost(RecordingRemote):
    """A host over SSH whose env files set nothing (the ledger file's default path)."""

    def read_text(self, path, missing_ok=True, sudo=False):
        return ""

    def close(self):
        pass


def quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def publish(admin: ManagementAPI, vhost: str, queue: str, payload: str, message_id: str = "") -> None:
    """Through the default exchange, as the administrator."""
    properties = {"delivery_mode": 2, **({"message_id": message_id} if message_id else {})}
    routed = admin.request(
        "POST",
        f"/api/exchanges/{quoted(vhost)}/amq.default/publish",
        {"properties": properties, "routing_key": queue, "payload": payload, "payload_encoding": "string"},
    )
    assert routed == {"routed": True}, (queue, routed)


def inventory_text(management_port: int, vhost: str, queues: dict[str, str], user: str) -> str:
    """Every host on 127.0.0.1; the broker's names and port set for all of them."""
    controller = (
        "{{ offload_broker_users | combine({'controller': {'name': '" + user + "'}}, recursive=True) }}"
    )
    settings = {
        "rabbitmq_management_port": management_port,
        "offload_broker_vhost": vhost,
        "offload_broker_task_queue": queues["task"],
        "offload_broker_ledger_queue": queues["ledger"],
        "offload_broker_dead_letter_queue": queues["dead"],
        "rabbitmq_users": controller,
    }
    hosts = {
        g: {"hosts": {f"{g}1": {"ansible_host": "127.0.0.1"}}}
        for g in ("broker", "gateway", "core", "loadgen")
    }
    return json.dumps({"all": {"vars": settings, "children": hosts}})  # YAML reads JSON


@pytest.fixture
def renamed(tmp_path):
    """A vhost of its own with the renamed queues, a controller user as the role makes it
    (monitoring; read on the ledger and the dead-letter queue) and fab's connections from an
    inventory naming them; everything made on the broker is deleted afterwards."""
    admin, connection = real_broker()
    connection.close()
    management = urllib.parse.urlsplit(os.environ["RABBITMQ_MGMT_URL"])
    suffix = uuid.uuid4().hex[:8]
    vhost, user, password = f"names-{suffix}", f"ctl-{suffix}", uuid.uuid4().hex
    queues = {"task": f"jobs-{suffix}", "ledger": f"jobs-{suffix}.done", "dead": f"jobs-{suffix}.dead"}
    admin.request("PUT", f"/api/vhosts/{quoted(vhost)}", {})
    admin.request("PUT", f"/api/users/{quoted(user)}", {"password": password, "tags": "monitoring"})
    try:
        everything = {"configure": ".*", "write": ".*", "read": ".*"}
        admin.request(
            "PUT", f"/api/permissions/{quoted(vhost)}/{quoted(management.username or '')}", everything
        )
        ledger_and_dead = "|".join(q.replace(".", r"\.") for q in (queues["ledger"], queues["dead"]))
        permissions = {"configure": "^$", "write": "^$", "read": f"^({ledger_and_dead})$"}
        admin.request("PUT", f"/api/permissions/{quoted(vhost)}/{quoted(user)}", permissions)
        for queue in queues.values():
            admin.request("PUT", f"/api/queues/{quoted(vhost)}/{quoted(queue)}", {"durable": True})
        source = tmp_path / "hosts.yml"
        source.write_text(inventory_text(management.port, vhost, queues, user))
        lab = LabConnections(inventory.load(str(source), repo_root=tmp_path), "run", password)
        lab.remotes = {name: EnvlessHost() for name in lab.remotes}
        yield admin, lab, vhost, queues
        lab.close()
    finally:
        admin.request("DELETE", f"/api/vhosts/{quoted(vhost)}")
        admin.request("DELETE", f"/api/users/{quoted(user)}")


def test_fab_reads_the_renamed_queues_by_the_inventorys_names(renamed):
    admin, lab, vhost, queues = renamed
    for i in range(3):
        publish(admin, vhost, queues["task"], json.dumps({"id": f"t-{i}"}), message_id=f"t-{i}")
    publish(admin, vhost, queues["ledger"], json.dumps({"task_id": "t-0", "outcome": "done"}))
    publish(admin, vhost, queues["dead"], json.dumps({"id": "t-2"}), message_id="t-2")
    services = lab.sweep_services()
    assert services.broker_names.task_queue == queues["task"]
    deadline = time.monotonic() + STATISTICS_WAIT_S
    while depth_total(services.queue_depth(services.broker_names.task_queue)) != 3:
        assert time.monotonic() < deadline, "the task queue's 3 messages were not seen"
        time.sleep(0.2)
    ledger = services.ledgers["broker"]  # there since the ledger queue exists
    assert [json.loads(body)["task_id"] for body in ledger.take()] == ["t-0"]
    assert [m["properties"]["message_id"] for m in ledger.dead_letters()] == ["t-2"]
    facts = services.broker_facts([])
    assert set(facts["queues"]) == set(queues.values())
    assert not any("error" in q for q in facts["queues"].values()), facts
