"""The ledger of a quorum task queue on a real RabbitMQ (scripts/with-test-broker.sh): a task
that keeps coming back is dead-lettered by the broker itself past x-delivery-limit, with no
outcome record; the ledger finds it in the dead-letter queue, leaves it there, and loses nothing.

The task queue is declared with the core's own arguments for QUEUE_TYPE=quorum
(core-go/internal/topology/topology.go, TaskQueueArgs) and bound to its task exchange, where the
tasks are published as the gateway publishes them; a consumer here stands for a core that
dies on the task every time (it returns it to the queue)."""

from __future__ import annotations

import gzip
import json
import time
import uuid

import pika
import pytest
from real_broker import real_broker

from offload_lab.services.broker import BrokerError, ManagementAPI, OutcomeRecords
from offload_lab.services.outcomes import collect_ledger

DELIVERY_LIMIT = 2
DEAD_LETTER_WAIT_S = 30


@pytest.fixture
def topology():
    api, conn = real_broker()
    channel = conn.channel()
    base = f"test.quorum.{uuid.uuid4().hex[:8]}"
    names = {"tasks": base, "dlx": f"{base}.dlx", "dead": f"{base}.dead", "done": f"{base}.done"}
    channel.exchange_declare(names["dlx"], "direct", durable=True)
    channel.queue_declare(names["dead"], durable=True)
    channel.queue_bind(names["dead"], names["dlx"], names["dead"])
    channel.queue_declare(names["done"], durable=True)
    channel.queue_declare(
        names["tasks"],
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": names["dlx"],
            "x-dead-letter-routing-key": names["dead"],
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )
    # the task exchange: the task queue's name, the queue bound by its name
    channel.exchange_declare(names["tasks"], "direct", durable=True)
    channel.queue_bind(names["tasks"], names["tasks"], names["tasks"])
    channel.confirm_delivery()
    yield api, channel, names
    for queue in (names["tasks"], names["dead"], names["done"]):
        channel.queue_delete(queue)
    for exchange in (names["dlx"], names["tasks"]):
        channel.exchange_delete(exchange)
    conn.close()


def publish_task(channel, queue: str, task_id: str) -> None:
    """As the gateway publishes: to the task exchange (named like the queue)."""
    body = json.dumps({"id": task_id, "enqueued_at_ns": time.time_ns(), "payload": {}}).encode()
    channel.basic_publish(queue, queue, body, pika.BasicProperties(message_id=task_id, delivery_mode=2))


def return_until_dead_lettered(api: ManagementAPI, channel, names: dict[str, str], expected: int) -> int:
    """Take each task and return it to the queue (a core dying on it) until the broker has
    dead-lettered `expected` tasks; how many times a task was returned."""
    returned = 0
    deadline = time.monotonic() + DEAD_LETTER_WAIT_S
    while api.queue_depth(names["dead"]).total < expected:
        assert time.monotonic() < deadline, f"nothing dead-lettered after {returned} returns"
        method, _, _ = channel.basic_get(names["tasks"])
        if method is None:
            time.sleep(0.2)
            continue
        channel.basic_nack(method.delivery_tag, requeue=True)
        returned += 1
    return returned


def write_samples(path, accepted: list[str]) -> None:
    """k6's per-request samples: a 202 with its task id for each accepted task."""
    rows = ["metric_name,timestamp,metric_value,expected_response,status,task_id"]
    rows += [f"http_req_duration,{int(time.time() * 1000)},2.0,true,202,{i}" for i in accepted]
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(rows) + "\n")


def test_a_task_past_the_delivery_limit_is_dead_lettered_by_the_broker_not_lost(topology, tmp_path):
    api, channel, names = topology
    done_ids = [f"done-{i}" for i in range(3)]
    doomed = "doomed-0"
    # an earlier step's task in the dead-letter queue: not this step's to count
    publish_task(channel, names["tasks"], "earlier-step")
    return_until_dead_lettered(api, channel, names, expected=1)
    for task_id in [*done_ids, doomed]:
        publish_task(channel, names["tasks"], task_id)
    for task_id in done_ids:  # what the core does for a task it works: record, then ack
        method, _, body = channel.basic_get(names["tasks"])
        assert json.loads(body)["id"] == task_id
        record = {"task_id": task_id, "outcome": "done"}
        channel.basic_publish("", names["done"], json.dumps(record).encode())
        channel.basic_ack(method.delivery_tag)
    returned = return_until_dead_lettered(api, channel, names, expected=2)
    assert returned == DELIVERY_LIMIT + 1  # delivered once, then DELIVERY_LIMIT redeliveries

    write_samples(tmp_path / "samples/s.csv.gz", [*done_ids, doomed])
    records = OutcomeRecords(api, names["done"], names["dead"])
    ledger = collect_ledger(records, tmp_path, "s", "samples/s.csv.gz", still_queued=0, max_wait_s=5)

    assert (ledger["accepted"], ledger["done"], ledger["lost"]) == (4, 3, 0)
    assert ledger["dead_lettered_by_broker"] == 1
    assert ledger["dead_lettered_by_broker_reasons"] == {"delivery_limit": 1}
    assert ledger["examples"]["dead_lettered_by_broker"] == [doomed]
    assert "dead_letters_error" not in ledger and ledger["waited_for_records_s"] == 0
    with gzip.open(tmp_path / ledger["dead_letters_file"], "rt") as fh:
        kept = [json.loads(line) for line in fh]
    assert kept == [{"task_id": doomed, "reason": "delivery_limit", "queue": names["tasks"]}]
    # looked at, not taken: both dead letters are still there, in order
    assert api.queue_depth(names["dead"]).total == 2
    assert [m["properties"]["message_id"] for m in records.dead_letters()] == ["earlier-step", doomed]


def test_without_the_dead_letter_queue_the_same_task_would_be_lost(topology, tmp_path):
    """The control: the same ledger, its dead letters unreadable (a queue that does not exist,
    as for a controller without read on it), calls the dead-lettered task lost and says why."""
    api, channel, names = topology
    publish_task(channel, names["tasks"], "doomed-1")
    return_until_dead_lettered(api, channel, names, expected=1)
    write_samples(tmp_path / "samples/s.csv.gz", ["doomed-1"])
    records = OutcomeRecords(api, names["done"], names["dead"] + ".missing")
    ledger = collect_ledger(records, tmp_path, "s", "samples/s.csv.gz", still_queued=0, max_wait_s=1)
    assert ledger["lost"] == 1 and ledger["dead_lettered_by_broker"] is None
    assert "404" in ledger["dead_letters_error"]


def test_a_look_sees_every_message_while_the_depth_statistics_lag(topology):
    """Right after a burst the queue's statistics still read (nearly) empty: a look whose first
    count is too small asks again, and sees all of them, twice over (nothing removed)."""
    api, channel, names = topology
    n = 2500
    for i in range(n):
        channel.basic_publish("", names["dead"], b"{}", pika.BasicProperties(message_id=f"burst-{i}"))
    records = OutcomeRecords(api, names["done"], names["dead"])
    for _ in range(2):
        ids = [m["properties"]["message_id"] for m in records.dead_letters()]
        assert ids == [f"burst-{i}" for i in range(n)]
    # more than a look may take: an error that says so, not the oldest ones passed off as all
    with pytest.raises(BrokerError, match=f"{names['dead']} holds more than 1000 messages"):
        api.peek_messages(names["dead"], limit=1000)
