"""RabbitMQ management API (queue depth, version) and the once-a-second queue sampler."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .broker_facts import broker_facts

TAKE_BATCH = 2000
# peeking at the dead-letter queue: at most this many messages (the management API's get took
# ~2 ms a message on the 2-core test broker, and its HTTP server gives up on a request after
# 60 s), payloads cut to this size (the task id is the message_id)
PEEK_LIMIT = 20_000
PEEK_PAYLOAD_BYTES = 256
PEEK_FIRST_COUNT = 1000


class BrokerError(RuntimeError):
    pass


@dataclass(frozen=True)
class QueueDepth:
    """ready = waiting for a consumer (the backlog); unacked = delivered, being worked or
    prefetched by a consumer (at steady state about rate x work time)."""

    ready: int
    unacked: int

    @property
    def total(self) -> int:
        return self.ready + self.unacked


def depth_total(depth: QueueDepth | int) -> int:
    return depth.total if isinstance(depth, QueueDepth) else int(depth)


class ManagementAPI:
    def __init__(
        self,
        base_url: str | Sequence[str],
        user: str,
        password: str,
        vhost: str,
        timeout: float = 5,
    ):
        """base_url: one broker node's management API, or every node's in inventory order: a
        request goes to the node that answered last, and moves on to the next when a node does
        not answer (a node that answers, even with an error, is the answer)."""
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("no management API URL")
        self.base_urls = [u.rstrip("/") for u in urls]
        self.base_url = self.base_urls[0]  # the node that answered last
        self.vhost = vhost
        self.timeout = timeout
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._auth = f"Basic {token}"

    def request(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": self._auth, "Content-Type": "application/json"}
        nodes = [self.base_url, *(u for u in self.base_urls if u != self.base_url)]
        unanswered: list[str] = []
        for base in nodes:
            req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                    raw = resp.read()
                self.base_url = base
                return json.loads(raw) if raw else None
            except Exception as exc:
                if len(nodes) == 1 or not _try_next_node(method, exc):
                    raise BrokerError(f"{method} {base}{path}: {exc}") from exc
                unanswered.append(f"{base}: {exc}")
        raise BrokerError(f"{method} {path}: no broker node answered ({'; '.join(unanswered)})")

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def _queue_path(self, queue: str) -> str:
        return f"/api/queues/{urllib.parse.quote(self.vhost, safe='')}/{urllib.parse.quote(queue, safe='')}"

    def take_messages(self, queue: str, limit: int = 1_000_000) -> list[str]:
        """Remove every message from `queue` (at most `limit`) and return their bodies: the
        management API's get with ack, in batches, until a batch comes back empty."""
        bodies: list[str] = []
        while len(bodies) < limit:
            batch = self.request(
                "POST",
                self._queue_path(queue) + "/get",
                {"count": min(TAKE_BATCH, limit - len(bodies)), "ackmode": "ack_requeue_false",
                 "encoding": "auto", "truncate": 65536},
                timeout=max(self.timeout, 60),
            )  # fmt: skip
            if not batch:
                break
            bodies.extend(m.get("payload", "") for m in batch)
        return bodies

    def peek_messages(self, queue: str, limit: int = PEEK_LIMIT) -> list[dict[str, Any]]:
        """Look at the messages of `queue` without removing them: a get of them all with
        ack_requeue_true (the broker puts them back, in order, after the last of one request; a
        second request would return the first ones again). The count asked for starts at twice
        the queue's depth, whose statistics lag by seconds: a full answer is asked again with a
        larger count. Each message as the API gives it: properties (headers, message_id) and
        the payload cut to PEEK_PAYLOAD_BYTES."""
        count = min(limit, max(PEEK_FIRST_COUNT, 2 * depth_total(self.queue_depth(queue))))
        while True:
            messages = (
                self.request(
                    "POST",
                    self._queue_path(queue) + "/get",
                    {
                        "count": count,
                        "ackmode": "ack_requeue_true",
                        "encoding": "auto",
                        "truncate": PEEK_PAYLOAD_BYTES,
                    },
                    timeout=max(self.timeout, 60),
                )
                or []
            )
            if len(messages) < count:
                return messages
            if count >= limit:
                raise BrokerError(
                    f"{queue} holds more than {limit} messages, more than can be looked at in one "
                    f"request: its newest are not seen. Keep what you need of it and purge it"
                )
            count = min(limit, count * 4)

    def purge(self, queue: str) -> None:
        self.request("DELETE", self._queue_path(queue) + "/contents")

    def queue_depth(self, queue: str) -> QueueDepth:
        q = self.get(self._queue_path(queue))
        ready = q.get("messages_ready")
        unacked = q.get("messages_unacknowledged")
        if ready is None and unacked is None:  # before the first statistics tick
            return QueueDepth(ready=int(q.get("messages") or 0), unacked=0)
        return QueueDepth(ready=int(ready or 0), unacked=int(unacked or 0))

    def queue_depths(self) -> dict[str, int]:
        """Every queue of the vhost and its messages (ready + unacked), in one request: the
        delay queues' depths each second cost one request however many there are."""
        vhost = urllib.parse.quote(self.vhost, safe="")
        listing = self.get(
            f"/api/queues/{vhost}?columns=name,messages,messages_ready,messages_unacknowledged"
        )
        out: dict[str, int] = {}
        for q in listing or []:
            ready, unacked = q.get("messages_ready"), q.get("messages_unacknowledged")
            if ready is None and unacked is None:  # before the first statistics tick
                out[q["name"]] = int(q.get("messages") or 0)
            else:
                out[q["name"]] = int(ready or 0) + int(unacked or 0)
        return out

    def facts(self, queues: Sequence[str]) -> dict[str, Any]:
        """The broker's version and these queues' settings (offload_lab.services.broker_facts)."""
        return broker_facts(self.get, {q: self._queue_path(q) for q in queues})

    def version(self) -> str | None:
        try:
            return self.get("/api/overview").get("rabbitmq_version")
        except BrokerError:
            return None


def _try_next_node(method: str, exc: Exception) -> bool:
    """Whether a request that failed this way may go to the next node: not when the node
    answered (an HTTP error), nor when a change (POST, DELETE) timed out and may have happened."""
    if isinstance(exc, urllib.error.HTTPError):
        return False
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    timed_out = isinstance(reason, TimeoutError | socket.timeout)
    return method == "GET" or not timed_out


class QueueSampler:
    """Polls a depth function once a second in a thread, from `start()` until `wait_drained()`.

    Samples are `[seconds since start, messages, ready]` (messages = ready + unacked; None when
    a poll failed; ready only when the depth function tells it apart). `load_ended()` takes
    an immediate sample so that a queue that is already empty counts as drained at once.
    Drained = first sample at or after the end of load with 0 messages (and, if given, the
    `idle` check passing, e.g. the core has nothing in flight).

    `others`, if given, reads more queues at the same moments ({queue: messages or None}, e.g.
    the delay queues of retries): kept in `other_samples` as `[seconds, {queue: n} or None]`,
    and drained also needs every one of them empty.
    """

    def __init__(
        self,
        depth: Callable[[], QueueDepth | int],
        queue: str,  # the queue `depth` reads, for the report
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        idle: Callable[[], bool] | None = None,
        others: Callable[[], dict[str, int | None]] | None = None,
    ):
        self.depth = depth
        self.others = others
        self.other_samples: list[list[Any]] = []
        self.other_errors = 0
        self.queue = queue
        self.interval_s = interval_s
        self.clock = clock
        self.idle = idle
        self.samples: list[list[Any]] = []
        self.load_end_s: float | None = None
        self.drain_s: float | None = None
        self.errors = 0
        self._t0 = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drained = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def t0(self) -> float:
        """The moment sampling started, on `clock`: sample times count from it."""
        return self._t0

    def start(self) -> None:
        self._t0 = self.clock()
        self._thread = threading.Thread(target=self._loop, name="queue-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        t = round(self.clock() - self._t0, 3)
        try:
            depth = self.depth()
            n = depth_total(depth)
            sample = [t, n, depth.ready] if isinstance(depth, QueueDepth) else [t, n]
        except Exception:
            self.errors += 1
            n = None
            sample = [t, None]
        others_empty = self._sample_others(t)
        with self._lock:
            self.samples.append(sample)
            ended = self.load_end_s is not None and t >= self.load_end_s
            empty = n == 0 and others_empty
            if ended and empty and not self._drained.is_set() and (self.idle is None or self._safe_idle()):
                self.drain_s = round(t - self.load_end_s, 3)
                self._drained.set()

    def _sample_others(self, t: float) -> bool:
        """Reads the other queues (if any); whether they are all empty (unread: not known to be)."""
        if self.others is None:
            return True
        try:
            depths: dict[str, int | None] | None = dict(self.others())
        except Exception:
            self.other_errors += 1
            depths = None
        with self._lock:
            self.other_samples.append([t, depths])
        return depths is not None and not any(depths.values())

    def _safe_idle(self) -> bool:
        try:
            return bool(self.idle())
        except Exception:
            return False

    def _loop(self) -> None:
        next_at = self.clock()
        while not self._stop.is_set():
            self._sample()
            if self._drained.is_set():
                return
            next_at += self.interval_s
            delay = max(0.0, next_at - self.clock())
            if self._wake.wait(delay):
                self._wake.clear()
                next_at = self.clock()  # sample now, then keep a 1 s rhythm from here

    def load_ended(self) -> None:
        with self._lock:
            self.load_end_s = round(self.clock() - self._t0, 3)
        self._wake.set()

    def wait_drained(self, timeout_s: float) -> bool:
        """Block until drained or `timeout_s` after the end of load; then stop sampling."""
        ok = self._drained.wait(timeout_s)
        self.stop()
        return ok

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def report(self) -> dict[str, Any]:
        with self._lock:
            depths = [s[1] for s in self.samples if s[1] is not None]
            readies = [s[2] for s in self.samples if len(s) > 2]
            peak = max(depths) if depths else None
            peak_ready = max(readies) if readies else None
            return {
                "queue": self.queue,
                "samples": list(self.samples),
                "peak": peak,
                "peak_ready": peak_ready,
                "peak_unacked": max(s[1] - s[2] for s in self.samples if len(s) > 2) if readies else None,
                "load_end_s": self.load_end_s,
                "drain_s": self.drain_s,
                "drained": self._drained.is_set(),
                "sample_errors": self.errors,
            }


class OutcomeRecords:
    """The core's outcome records queue (the ledger on the broker) through the management API:
    emptied before a step, taken after it (offload_lab/services/outcomes.py;
    offload_lab/analysis/ledger.py reads the records). Also what sits in the dead-letter queue,
    looked at without removing it: a quorum queue's broker dead-letters a task past its
    x-delivery-limit itself, and the core never records those."""

    def __init__(self, api: ManagementAPI, queue: str, dead_letter_queue: str):
        self.api = api
        self.queue = queue
        self.dead_letter_queue = dead_letter_queue

    def exists(self) -> bool:
        try:
            self.api.queue_depth(self.queue)
            return True
        except BrokerError:
            return False

    def purge(self) -> None:
        self.api.purge(self.queue)

    def take(self) -> list[str]:
        return self.api.take_messages(self.queue)

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.api.peek_messages(self.dead_letter_queue)
