"""PUBLISHER=pipelined: per worker process one connection and one confirm-mode channel, with many
publishes outstanding on it; a reader settles each request from the broker's confirms.

A request takes the process's publish lock, gets the next delivery tag (the broker numbers the
publishes of a confirm-mode channel 1, 2, ... in the order it receives them), registers a waiter
under that tag, writes basic.publish (mandatory) and releases the lock; then it waits up to
PUBLISH_TIMEOUT_S for its waiter. The reader, a thread under gthread and a greenlet under gevent
(gunicorn's monkey-patching makes `threading` cooperative), reads the broker's frames: an ack or
a nack settles its tag or, with `multiple`, every outstanding tag up to it; a basic.return (a task
that reached no queue, returned before its ack) marks that task's waiter so its ack answers 503.
A lost connection fails every waiter on it, and the next request connects again: with several
brokers in AMQP_URL (";"-separated), to the broker after the lost one first, then the others in
turn (py-amqp has no failover of its own). Tasks go to the task exchange; nothing is declared
(topology.py). A missing task exchange closes the channel (404 NOT_FOUND), which the reader takes
as a lost connection: every waiter fails (503) and the next request connects again. py-amqp
frames the messages: one writer at a time (the lock), one reader.
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import unquote, urlsplit

import amqp
from amqp import spec

from .. import topology
from ..settings import Settings
from ..task import CONTENT_TYPE, PERSISTENT, TaskMessage
from .base import Publisher, PublishError, closed_for_a_missing_exchange, exchange_missing, unroutable

log = logging.getLogger(__name__)

# basic.publish's arguments: ticket, exchange, routing key, mandatory, immediate
_PUBLISH_SIGNATURE = "Bssbb"
NACKED = "broker refused the task (basic.nack): the queue is full or the broker could not store it"


class Waiter:
    """One request's wait for the broker's answer about its message."""

    __slots__ = ("done", "error", "message_id", "returned", "sent_at")

    def __init__(self, message_id: str):
        self.message_id = message_id
        self.sent_at = time.monotonic()
        # threading.Event is gevent's Event once gunicorn's gevent worker has patched
        self.done = threading.Event()
        self.error: str | None = None  # once done: None if the broker took the task, else why not
        self.returned = False

    def finish(self, error: str | None) -> None:
        self.error = error
        self.done.set()


class ConfirmTracker:
    """The outstanding delivery tags of one confirm-mode channel and the waiter of each.

    Tags are handed out in the order messages are written (the caller holds the publish lock), so
    the waiters dict is in increasing tag order. Acks and nacks may come in any order; one with
    `multiple` settles every outstanding tag up to its own."""

    def __init__(self, queue: str):
        self._unroutable = str(unroutable(queue))
        self._lock = threading.Lock()
        self._waiters: dict[int, Waiter] = {}
        self._last_tag = 0
        self._failure: str | None = None

    @property
    def failure(self) -> str | None:
        """Why this channel is unusable (every waiter failed), or None while it is usable."""
        return self._failure

    def add(self, message_id: str) -> tuple[int, Waiter]:
        """The tag of the message about to be written, and its waiter."""
        with self._lock:
            if self._failure is not None:
                raise PublishError(self._failure)
            self._last_tag += 1
            waiter = Waiter(message_id)
            self._waiters[self._last_tag] = waiter
            return self._last_tag, waiter

    def acked(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple, None)

    def nacked(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple, NACKED)

    def returned(self, message_id: str) -> None:
        """The broker returned this task (no queue); its ack follows. basic.return carries no tag:
        every outstanding waiter with this id is marked (ids may repeat), so a task that reached
        no queue never gets a 202; at worst a duplicate id that did land gets a 503."""
        with self._lock:
            for waiter in self._waiters.values():
                if waiter.message_id == message_id:
                    waiter.returned = True

    def _settle(self, delivery_tag: int, multiple: bool, error: str | None) -> None:
        with self._lock:
            if multiple:
                lowest = next(iter(self._waiters), delivery_tag + 1)
                tags = range(lowest, delivery_tag + 1)
            else:
                tags = (delivery_tag,)
            for tag in tags:
                waiter = self._waiters.pop(tag, None)
                if waiter is not None:
                    waiter.finish(error or (self._unroutable if waiter.returned else None))

    def forget(self, delivery_tag: int) -> bool:
        """Stop waiting for this tag (its request timed out); False if it was settled meanwhile."""
        with self._lock:
            return self._waiters.pop(delivery_tag, None) is not None

    def fail_all(self, reason: str) -> bool:
        """Fail every outstanding waiter and refuse new ones; True the first time."""
        with self._lock:
            first = self._failure is None
            if first:
                self._failure = reason
            waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            waiter.finish(reason)
        return first


class _Link:
    """One connection, its publishing channel and the reader of the broker's frames."""

    def __init__(self, settings: Settings, url: str, deadline: float):
        self.url = url
        self._queue = settings.task_queue
        self._exchange = topology.task_exchange(settings.task_queue)
        self._confirm = settings.publish_confirm
        self._timeout_s = settings.publish_timeout_s
        self.tracker = ConfirmTracker(settings.task_queue)
        self.connection = amqp.Connection(
            **_connection_arguments(url),
            login_method="PLAIN",
            connect_timeout=_left(deadline),
            heartbeat=0,
            on_blocked=lambda reason: log.warning("broker blocked publishing: %s", reason),
            on_unblocked=lambda: log.warning("broker unblocked publishing"),
        )
        try:
            self.connection.connect()
            sock = self.connection.transport.sock
            sock.settimeout(_left(deadline))
            self.channel = self.connection.channel()
            if self._confirm:
                self.channel.confirm_select()
            # from now on a bound on each write; the reader takes a timeout as silence
            sock.settimeout(self._timeout_s)
        except BaseException:
            self.connection.collect()
            raise
        self.channel.events["basic_ack"].add(self.tracker.acked)
        self.channel.events["basic_nack"].add(self.tracker.nacked)
        self.channel.events["basic_return"].add(self._on_return)
        self.last_read_at = time.monotonic()
        threading.Thread(target=self._read_frames, name="pipelined-publisher-reader", daemon=True).start()

    def send(self, message: TaskMessage) -> tuple[int, Waiter] | None:
        """Write the task (the caller holds the publish lock); its tag and waiter if confirming."""
        if self._confirm:
            entry = self.tracker.add(message.id)
        elif self.tracker.failure is not None:
            raise PublishError(self.tracker.failure)
        else:
            entry = None
        content = amqp.Message(
            message.body,
            message_id=message.id,
            content_type=CONTENT_TYPE,
            content_encoding="utf-8",
            delivery_mode=PERSISTENT,
        )
        try:
            self.channel.send_method(
                spec.Basic.Publish, _PUBLISH_SIGNATURE, (0, self._exchange, self._queue, True, False), content
            )
        except Exception as exc:
            # a frame may be half written: the connection cannot be used any more
            reason = f"broker unavailable: publish failed: {_text(exc)}"
            self.close(reason)
            raise PublishError(reason) from exc
        return entry

    def wait(self, delivery_tag: int, waiter: Waiter, deadline: float) -> None:
        """Return once the broker acked this message; raise PublishError otherwise."""
        if not waiter.done.wait(_left(deadline, at_least=0)):
            if self.tracker.forget(delivery_tag):
                if self.last_read_at < waiter.sent_at:
                    # nothing at all came back since: a hung broker or a dead peer
                    self.close(f"broker unavailable: silent for {self._timeout_s:g} s")
                raise PublishError(f"broker did not confirm in time ({self._timeout_s:g} s)")
            waiter.done.wait()  # the reader settled it just now
        if waiter.error is not None:
            raise PublishError(waiter.error)

    def close(self, reason: str) -> None:
        """Fail every outstanding request and drop the connection (no I/O: it may be broken)."""
        if self.tracker.fail_all(reason):
            log.warning("publishing connection closed: %s", reason)
            self.connection.collect()

    def _on_return(self, exc, exchange, routing_key, message) -> None:
        task_id = message.properties.get("message_id", "")
        if self._confirm:
            log.warning("task %s reached no queue (%s): answered 503", task_id, routing_key)
            self.tracker.returned(task_id)
        else:
            log.warning("task %s reached no queue and was dropped (published without confirms)", task_id)

    def _read_frames(self) -> None:
        connection = self.connection
        try:
            while self.tracker.failure is None:
                try:
                    connection.drain_events()
                except TimeoutError:
                    continue  # idle; the socket's timeout is there to bound writes
                self.last_read_at = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - whatever broke, the connection is done
            if closed_for_a_missing_exchange(exc):
                self.close(str(exchange_missing(self._exchange)))
            else:
                self.close(f"broker unavailable: connection lost: {_text(exc)}")


class PipelinedPublisher(Publisher):
    def __init__(self, settings: Settings):
        self._settings = settings
        self._timeout_s = settings.publish_timeout_s
        # serializes connecting and writing, so tags follow the order messages are written
        self._lock = threading.Lock()
        self._link: _Link | None = None
        self._failed_connects = 0  # in a row: logged once per outage, not once per request
        self._urls = settings.amqp_urls
        self._first = 0  # the broker to try first on the next connect

    def publish(self, message: TaskMessage) -> None:
        deadline = time.monotonic() + self._timeout_s
        if not self._lock.acquire(timeout=self._timeout_s):
            raise PublishError(f"broker unavailable: no turn to publish within {self._timeout_s:g} s")
        try:
            link = self._live_link(deadline)
            entry = link.send(message)
        finally:
            self._lock.release()
        if entry is not None:
            link.wait(*entry, deadline)

    def _live_link(self, deadline: float) -> _Link:
        """The connection to publish on, connecting first if there is none (lock held)."""
        link = self._link
        if link is not None and link.tracker.failure is None:
            return link
        if link is not None:  # lost: start with the broker after its one
            self._first = (self._urls.index(link.url) + 1) % len(self._urls)
        self._link = None
        try:
            self._link = self._connect(deadline)
        except Exception as exc:
            self._failed_connects += 1
            if self._failed_connects == 1:
                log.warning("connecting to the broker failed: %r (logged again once it connects)", exc)
            raise PublishError(f"broker unavailable: {_text(exc)}") from exc
        if self._failed_connects:
            log.warning("connected to the broker after %d failed attempts", self._failed_connects)
            self._failed_connects = 0
        return self._link

    def _connect(self, deadline: float) -> _Link:
        """A link to the first broker that answers, from `_first` on, each attempt given an
        equal share of the time left; the last attempt's error if none does."""
        count = len(self._urls)
        for attempt in range(count):
            index = (self._first + attempt) % count
            share = time.monotonic() + _left(deadline) / (count - attempt)
            try:
                link = _Link(self._settings, self._urls[index], share)
            except Exception:
                if attempt == count - 1:
                    raise
                continue
            self._first = index
            return link
        raise AssertionError("unreachable: the last attempt returns or raises")

    def warm_up(self) -> None:
        deadline = time.monotonic() + self._timeout_s
        with self._lock:
            try:
                self._live_link(deadline)
            except PublishError as exc:
                log.warning("warm-up: broker not reachable yet: %s", exc)

    def close(self) -> None:
        with self._lock:
            link, self._link = self._link, None
        if link is not None:
            link.close("publisher closed")


def _connection_arguments(amqp_url: str) -> dict[str, object]:
    url = urlsplit(amqp_url)
    tls = url.scheme == "amqps"
    host = url.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return {
        "host": f"{host}:{url.port or (5671 if tls else 5672)}",
        "userid": unquote(url.username or "guest"),
        "password": unquote(url.password or "guest"),
        "virtual_host": unquote(url.path[1:]) if len(url.path) > 1 else "/",
        "ssl": tls,
    }


def _left(deadline: float, at_least: float = 0.001) -> float:
    """Seconds until the deadline; a socket needs a positive timeout."""
    return max(deadline - time.monotonic(), at_least)


def _text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def create(settings: Settings) -> Publisher:
    return PipelinedPublisher(settings)
