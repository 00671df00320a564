"""The controller's side of the core's stats API: the reset carries the token."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from offload_lab.services.core import CoreError, CoreStats, merge_stats


class Core(BaseHTTPRequestHandler):
    token = "s3cret"
    resets = 0

    def do_POST(self):  # noqa: N802 - http.server's naming
        if self.path != "/stats/reset":
            self.send_error(404)
        elif self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_error(401)
        else:
            type(self).resets += 1
            self.send_response(204)
            self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def core_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Core)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_reset_sends_the_token(core_url):
    before = Core.resets
    CoreStats({"core": core_url}, reset_token="s3cret").reset()
    assert Core.resets == before + 1


def test_reset_without_the_token_is_refused(core_url):
    with pytest.raises(CoreError, match="401"):
        CoreStats({"core": core_url}).reset()


def stats(received, avg, p95, last_done, since, in_flight=0):
    return {
        "received": received, "completed": received, "failed": 0, "dead_lettered": 1, "redelivered": 0,
        "in_flight": in_flight, "work_requests": 0, "last_done_at_ns": last_done, "since": since,
        "completion_latency_ms": {"count": received, "avg": avg, "p50": avg, "p95": p95, "p99": p95,
                                  "max": p95},
    }  # fmt: skip


def test_stats_of_several_cores_are_merged():
    merged = merge_stats(
        {"core1": stats(300, 10.0, 20.0, 5_000, "2026-11-27T20:00:01Z", in_flight=2),
         "core2": stats(100, 30.0, 90.0, 7_000, "2026-11-27T20:00:00Z")}
    )  # fmt: skip
    assert merged["received"] == 400 and merged["completed"] == 400 and merged["dead_lettered"] == 2
    assert merged["in_flight"] == 2  # the sweep waits until no core has any
    lat = merged["completion_latency_ms"]
    assert lat["count"] == 400 and lat["avg"] == pytest.approx((300 * 10 + 100 * 30) / 400)  # exact
    assert lat["p95"] == 90.0 and lat["percentiles_of"] == "the highest host"  # an upper bound
    assert merged["last_done_at_ns"] == 7_000 and merged["since"] == "2026-11-27T20:00:00Z"
    assert set(merged["per_host"]) == {"core1", "core2"}
    one = merge_stats({"core": stats(5, 1.0, 2.0, 1, "x")})
    assert "per_host" not in one and "percentiles_of" not in one["completion_latency_ms"]  # as before
