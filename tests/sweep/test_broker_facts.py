"""What a step records of its broker: the version and each queue's settings, from the records
RabbitMQ 3.10 and 4.0 really give (shapes seen on Debian 12's 3.10.8 and Debian 13's 4.0.5), and
read from the real test broker (scripts/with-test-broker.sh)."""

from __future__ import annotations

import uuid

from real_broker import real_broker

from offload_lab.analysis.run_header import broker_line
from offload_lab.services.broker_facts import broker_facts, queue_facts

# GET /api/queues/VHOST/NAME, trimmed to what matters: 3.10 shows the classic queue's version in
# backing_queue_status (once statistics were emitted); 4.0 names it storage_version
CLASSIC_310 = {"type": "classic", "durable": True, "arguments": {}, "backing_queue_status": {"version": 1}}
CLASSIC_40 = {
    "type": "classic",
    "durable": True,
    "arguments": {"x-queue-type": "classic"},
    "storage_version": 2,
}
QUORUM = {"type": "quorum", "durable": True, "arguments": {"x-queue-type": "quorum"}}


def test_classic_queue_version_on_both_releases():
    assert queue_facts(CLASSIC_310, 3)["classic_version"] == 1
    assert queue_facts(CLASSIC_40, 4)["classic_version"] == 2
    # before 3.10's first statistics tick: unknown, not guessed
    assert queue_facts({"type": "classic", "arguments": {}}, 3)["classic_version"] is None
    # 4.x has only v2
    assert queue_facts({"type": "classic", "arguments": {}}, 4)["classic_version"] == 2


def test_quorum_delivery_limit_defaults_differ_between_releases():
    assert queue_facts(QUORUM, 3)["delivery_limit"] is None
    assert queue_facts(QUORUM, 4)["delivery_limit"] == 20
    explicit = {**QUORUM, "arguments": {"x-queue-type": "quorum", "x-delivery-limit": 5}}
    assert queue_facts(explicit, 4)["delivery_limit"] == 5
    off = {**QUORUM, "arguments": {"x-queue-type": "quorum", "x-delivery-limit": -1}}
    assert queue_facts(off, 4)["delivery_limit"] is None
    by_policy = {**QUORUM, "effective_policy_definition": {"delivery-limit": 7}}
    assert queue_facts(by_policy, 4)["delivery_limit"] == 7


def test_broker_facts_keep_a_queue_that_cannot_be_read():
    records = {
        "/api/overview": {"rabbitmq_version": "4.0.5", "erlang_version": "27.3.4.1"},
        "/q/tasks": CLASSIC_40,
    }

    def get(path):
        if path not in records:
            raise RuntimeError(f"404 {path}")
        return records[path]

    facts = broker_facts(get, {"tasks": "/q/tasks", "tasks.done": "/q/done"})
    assert facts["rabbitmq_version"] == "4.0.5"
    assert facts["queues"]["tasks"]["classic_version"] == 2
    assert "404" in facts["queues"]["tasks.done"]["error"]
    assert broker_line(facts) == "RabbitMQ 4.0.5 (Erlang 27.3.4.1); tasks: classic v2"
    assert broker_line(None) == "not recorded"


def test_broker_facts_from_the_real_broker():
    api, conn = real_broker()
    channel = conn.channel()
    base = f"test.facts.{uuid.uuid4().hex[:8]}"
    classic, quorum = f"{base}.classic", f"{base}.quorum"
    channel.queue_declare(classic, durable=True)
    channel.queue_declare(quorum, durable=True, arguments={"x-queue-type": "quorum", "x-delivery-limit": 3})
    try:
        facts = api.facts([classic, quorum, f"{base}.missing"])
        server_version = conn._impl.server_properties["version"]  # what the broker says on AMQP
        assert facts["rabbitmq_version"] == server_version
        assert facts["erlang_version"]
        assert facts["queues"][classic]["type"] == "classic"
        assert facts["queues"][classic]["durable"] is True
        assert facts["queues"][quorum] == {
            "type": "quorum",
            "durable": True,
            "arguments": {"x-queue-type": "quorum", "x-delivery-limit": 3},
            "policy": None,
            "delivery_limit": 3,
        }
        assert "error" in facts["queues"][f"{base}.missing"]
    finally:
        channel.queue_delete(classic)
        channel.queue_delete(quorum)
        conn.close()
