"""Fixtures for the sweep tests: a temporary inventory, fakes of every remote call, a local
stand-in for SSH that runs commands on this machine."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sweep_fakes import LocalRemote

INVENTORY = """\
all:
  vars:
    ansible_user: root
    ansible_ssh_private_key_file: .lab/ssh/id_ed25519
  children:
    broker:
      hosts:
        lab-broker: {ansible_host: 10.77.77.11}
    gateway:
      hosts:
        lab-gateway: {ansible_host: 10.77.77.12}
    core:
      hosts:
        lab-core: {ansible_host: 10.77.77.13}
        lab-core2: {ansible_host: 192.0.2.15, offload_private_address: "{{ core2_private }}"}
    loadgen:
      hosts:
        lab-loadgen: {ansible_host: 10.77.77.14, ansible_user: k6user, ansible_port: 2222}
"""


@pytest.fixture
def inventory_dir(tmp_path: Path) -> Path:
    d = tmp_path / "inventory" / "lab"
    (d / "group_vars").mkdir(parents=True)
    (d / "hosts.yml").write_text(INVENTORY)
    # group_vars next to the inventory are Ansible's business: they must be honoured
    (d / "group_vars" / "broker.yml").write_text("offload_private_address: 10.99.0.11\n")
    (d / "group_vars" / "all.yml").write_text("core2_private: 10.99.0.15\n")
    return d


@pytest.fixture
def local_remote():
    return LocalRemote()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.bodies.append((self.path, body))
        code = self.server.status.get(self.path, 404)
        payload = b'{"id": "x"}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def _serve_target():
    """A tiny gateway stand-in on 127.0.0.1: /sync -> 200, /async -> 202 (changeable)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.bodies = []
    server.status = {"/sync": 200, "/async": 202}
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_target():
    yield from _serve_target()


@pytest.fixture
def second_target():
    """Another stand-in, for tests of several gateways."""
    yield from _serve_target()
