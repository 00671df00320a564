"""Taking the core's outcome records through the management API of a real RabbitMQ (the test
broker of scripts/with-test-broker.sh): every message, in batches, and nothing left behind."""

from __future__ import annotations

import os
import uuid

import pytest
from real_broker import real_broker

from offload_lab.services.broker import TAKE_BATCH, OutcomeRecords


@pytest.fixture
def broker():
    api, conn = real_broker()
    channel = conn.channel()
    queue = f"test.done.{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue, durable=True)
    channel.confirm_delivery()
    yield api, channel, queue
    channel.queue_delete(queue)
    conn.close()


def test_take_returns_every_record_and_empties_the_queue(broker):
    api, channel, queue = broker
    n = TAKE_BATCH + 7  # more than one batch
    for i in range(n):
        channel.basic_publish("", queue, f'{{"task_id": "t-{i}", "outcome": "done"}}'.encode())
    records = OutcomeRecords(api, queue, queue + ".dead")
    assert records.exists()
    bodies = records.take()
    assert len(bodies) == n and len(set(bodies)) == n and '"t-0"' in bodies[0]
    assert records.take() == []


def test_purge_and_a_missing_queue(broker):
    api, channel, queue = broker
    channel.basic_publish("", queue, b"{}")
    records = OutcomeRecords(api, queue, queue + ".dead")
    records.purge()
    assert records.take() == []
    assert not OutcomeRecords(api, queue + ".missing", queue + ".dead").exists()


def test_the_test_brokers_credentials_file_is_private():
    state = os.environ.get("OFFLOAD_TEST_BROKER_DIR")
    assert state, "run under scripts/with-test-broker.sh"
    mode = os.stat(os.path.join(state, "env")).st_mode & 0o777
    assert mode == 0o600, oct(mode)
