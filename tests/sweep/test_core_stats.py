"""The controller's side of the core's stats API: the reset carries the token."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from offload_lab.core import CoreError, CoreStats


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
