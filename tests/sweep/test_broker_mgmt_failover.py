"""The management API is read from whichever broker node answers, in inventory order."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from offload_lab.services.broker import BrokerError, ManagementAPI


class Node(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        self.server.hits.append(self.path)
        if self.server.status != 200:
            self.send_error(self.server.status)
            return
        body = json.dumps({"rabbitmq_version": self.server.version}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_node(version, status=200):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Node)
    server.hits, server.version, server.status = [], version, status
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server


@pytest.fixture
def nodes():
    started = [start_node("node2"), start_node("node3")]
    yield started
    for s in started:
        s.shutdown()
        s.server_close()


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there once closed


def test_the_first_node_that_answers_is_read_and_kept(nodes):
    down = closed_port_url()
    api = ManagementAPI([down, nodes[0].url, nodes[1].url], "u", "p", "v")
    assert api.get("/api/overview")["rabbitmq_version"] == "node2"
    assert api.base_url == nodes[0].url  # the next request goes there first
    assert api.version() == "node2" and len(nodes[0].hits) == 2 and nodes[1].hits == []
    nodes[0].shutdown()
    nodes[0].server_close()
    assert api.version() == "node3" and api.base_url == nodes[1].url  # node2 died: on to node3


def test_a_node_that_answers_with_an_error_is_the_answer(nodes):
    nodes[0].status = 401
    api = ManagementAPI([nodes[0].url, nodes[1].url], "u", "p", "v")
    with pytest.raises(BrokerError, match="401"):
        api.get("/api/overview")
    assert nodes[1].hits == []  # no second opinion on a refusal


def test_no_node_answering_names_them_all():
    down = [closed_port_url(), closed_port_url()]
    with pytest.raises(BrokerError, match="no broker node answered") as err:
        ManagementAPI(down, "u", "p", "v", timeout=1).get("/api/overview")
    assert all(url in str(err.value) for url in down)


def test_one_url_behaves_as_before():
    down = closed_port_url()
    api = ManagementAPI(down, "u", "p", "v", timeout=1)
    assert api.base_urls == [down]
    with pytest.raises(BrokerError, match=f"GET {down}/api/overview: "):
        api.get("/api/overview")
