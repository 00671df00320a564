"""The pipelined publisher's bookkeeping (publishers/pipelined.py, ConfirmTracker): each request
is settled by the broker's answer about its own delivery tag, whatever order and grouping the
answers come in. No broker: the tracker is fed the acks, nacks and returns a channel delivers."""

import threading

import pytest
from offload_gateway.publishers import PublishError
from offload_gateway.publishers.pipelined import NACKED, ConfirmTracker

QUEUE = "tasks"
UNROUTABLE = f"broker could not route the task: no queue {QUEUE!r}"
ACCEPTED = "202"


def _publish(tracker: ConfirmTracker, count: int) -> dict:
    """`count` messages, ids m1.. in publish order: {tag: waiter}."""
    waiters = {}
    for n in range(1, count + 1):
        tag, waiter = tracker.add(f"m{n}")
        assert tag == n, "tags count the channel's publishes from 1"
        waiters[tag] = waiter
    return waiters


def _outcomes(waiters: dict) -> dict:
    """{tag: "202" | the error | None while still waiting}."""
    return {
        tag: (ACCEPTED if w.error is None else w.error) if w.done.is_set() else None
        for tag, w in waiters.items()
    }


def test_a_multiple_ack_settles_every_tag_up_to_its_own_and_a_nack_only_its_own():
    tracker = ConfirmTracker(QUEUE)
    waiters = _publish(tracker, 8)

    tracker.acked(3, multiple=True)  # 1, 2, 3
    tracker.nacked(4, multiple=False)  # the nack in the middle
    tracker.acked(6, multiple=False)  # out of order: 6 before 5
    assert _outcomes(waiters) == {
        1: ACCEPTED,
        2: ACCEPTED,
        3: ACCEPTED,
        4: NACKED,
        5: None,
        6: ACCEPTED,
        7: None,
        8: None,
    }

    tracker.acked(7, multiple=True)  # 5 and 7; 6 is settled already
    tracker.nacked(8, multiple=True)  # only 8 is left
    assert _outcomes(waiters) == {
        1: ACCEPTED,
        2: ACCEPTED,
        3: ACCEPTED,
        4: NACKED,
        5: ACCEPTED,
        6: ACCEPTED,
        7: ACCEPTED,
        8: NACKED,
    }


def test_a_multiple_nack_fails_the_range_and_nothing_before_it():
    tracker = ConfirmTracker(QUEUE)
    waiters = _publish(tracker, 6)
    tracker.acked(2, multiple=True)
    tracker.nacked(5, multiple=True)
    tracker.acked(6, multiple=False)
    assert _outcomes(waiters) == {1: ACCEPTED, 2: ACCEPTED, 3: NACKED, 4: NACKED, 5: NACKED, 6: ACCEPTED}


def test_a_returned_task_gets_503_from_its_ack_and_its_neighbours_do_not():
    tracker = ConfirmTracker(QUEUE)
    waiters = _publish(tracker, 4)
    tracker.returned("m3")  # basic.return comes before the ack of that message
    tracker.acked(4, multiple=True)
    assert _outcomes(waiters) == {1: ACCEPTED, 2: ACCEPTED, 3: UNROUTABLE, 4: ACCEPTED}


def test_answers_for_unknown_or_settled_tags_change_nothing():
    tracker = ConfirmTracker(QUEUE)
    waiters = _publish(tracker, 3)
    tracker.acked(1, multiple=False)
    tracker.nacked(1, multiple=False)  # a second answer for tag 1
    tracker.acked(99, multiple=False)  # a tag never handed out
    assert _outcomes(waiters) == {1: ACCEPTED, 2: None, 3: None}


def test_a_request_that_gave_up_is_forgotten_and_its_late_ack_settles_no_other():
    tracker = ConfirmTracker(QUEUE)
    waiters = _publish(tracker, 3)
    assert tracker.forget(2) is True  # timed out: 503, it stops waiting
    tracker.acked(3, multiple=True)
    assert _outcomes(waiters) == {1: ACCEPTED, 2: None, 3: ACCEPTED}
    assert tracker.forget(3) is False, "settled already: the request must read its outcome"


def test_a_lost_connection_fails_every_outstanding_request_and_takes_no_more():
    tracker = ConfirmTracker(QUEUE)
    waiters = _publish(tracker, 3)
    tracker.acked(1, multiple=False)
    assert tracker.fail_all("connection lost") is True
    assert tracker.fail_all("again") is False
    assert _outcomes(waiters) == {1: ACCEPTED, 2: "connection lost", 3: "connection lost"}
    with pytest.raises(PublishError, match="connection lost"):
        tracker.add("m4")
    assert tracker.failure == "connection lost"


def test_threads_publishing_while_answers_arrive_each_get_their_own():
    """Threads take tags one at a time (as publish() does) while a reader answers each tag as
    soon as it exists: every 7th nacked alone, the others acked in runs by a `multiple` ack on
    every 5th tag."""
    tracker = ConfirmTracker(QUEUE)
    lock = threading.Lock()
    handed_out = threading.Semaphore(0)
    results: dict[str, tuple[int, str | None]] = {}
    count = 500

    def request(n: int) -> None:
        with lock:
            tag, waiter = tracker.add(f"r{n}")
            handed_out.release()
        assert waiter.done.wait(10)
        results[f"r{n}"] = (tag, waiter.error)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for tag in range(1, count + 1):
        assert handed_out.acquire(timeout=10)  # tags 1..tag exist now
        if tag % 7 == 0:
            tracker.nacked(tag, multiple=False)
        elif tag % 5 == 0:
            tracker.acked(tag, multiple=True)
    for thread in threads:
        thread.join()
    assert len(results) == count
    assert {tag for tag, _ in results.values()} == set(range(1, count + 1))
    wrong = [(tag, error) for tag, error in results.values() if (error == NACKED) != (tag % 7 == 0)]
    assert not wrong
