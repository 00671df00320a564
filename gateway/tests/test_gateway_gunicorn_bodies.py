"""Request bodies under real gunicorn, for each worker class the gateway runs with: a chunked body
over MAX_BODY_BYTES gets 413, and a client that announces a body and never sends it is answered
408 and disconnected after BODY_READ_TIMEOUT_S, freeing its slot for others."""

import json
import socket
import time

import pytest
import requests

BODY_READ_TIMEOUT_S = 1.0
# scheduling slack on a loaded 2-core machine; the stall without the bound lasts forever
SLACK_S = 2.0
# after answering, the sync worker lingers up to 2 s for the client to close before it takes the
# next connection (gunicorn's util.close_graceful, so that unread request bytes cause no RST)
CLOSE_LINGER_S = {"gevent": 0.0, "gthread": 0.0, "sync": 2.0}


@pytest.fixture(scope="module", params=["gevent", "gthread", "sync"])
def gateway(request, start_gateway, broker, tmp_path_factory):
    """One worker with room for ONE request at a time under gthread and sync (gevent serves each
    connection on its own greenlet), so a stalled body blocks everyone unless it is bounded."""
    queue = f"gw-test-bodies-{request.param}"
    broker.declare_as_the_core(queue)
    env = {
        "TASK_QUEUE": queue,
        "GUNICORN_WORKER_CLASS": request.param,
        "GUNICORN_THREADS": "1",
        "BODY_READ_TIMEOUT_S": str(BODY_READ_TIMEOUT_S),
        # longer than the test: the sync worker is not restarted by the master meanwhile
        "GUNICORN_TIMEOUT": "60",
    }
    gateway = start_gateway(tmp_path_factory.mktemp(request.param), env)
    gateway.worker_class = request.param
    yield gateway
    broker.delete_task_queue(queue)


def _read_until_closed(sock: socket.socket, timeout_s: float) -> bytes:
    sock.settimeout(timeout_s)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_stalled_body_is_answered_408_and_closed_and_frees_the_slot(gateway):
    bound_s = BODY_READ_TIMEOUT_S + CLOSE_LINGER_S[gateway.worker_class] + SLACK_S
    stalled = socket.create_connection(("127.0.0.1", gateway.port))
    started = time.monotonic()
    stalled.sendall(
        b"POST /async HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n"
    )
    time.sleep(0.2)  # the worker takes the stalled request first

    response = requests.post(f"{gateway.base_url}/async", json={"id": "after-the-stall"}, timeout=10)
    assert response.status_code == 202, response.text
    assert response.json() == {"id": "after-the-stall"}
    assert time.monotonic() - started < bound_s

    try:
        answer = _read_until_closed(stalled, timeout_s=bound_s)
    finally:
        stalled.close()
    closed_after = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert json.loads(body) == {"error": f"request body not received within {BODY_READ_TIMEOUT_S:g} s"}
    assert BODY_READ_TIMEOUT_S * 0.9 <= closed_after < bound_s


def _chunks(total: int, size: int = 8192):
    body = json.dumps({"pad": "x" * total}).encode()
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_chunked_body_over_the_limit_gets_413(gateway):
    # a generator body: requests sends it chunked, without Content-Length
    response = requests.post(
        f"{gateway.base_url}/async",
        data=_chunks(200_000),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 413
    assert response.json() == {"error": "request body too large"}


def test_a_chunked_body_within_the_limit_is_taken(gateway, broker):
    response = requests.post(
        f"{gateway.base_url}/async",
        data=(part for part in [b'{"id": "chunked", ', b'"pad": "', b"x" * 30_000, b'"}']),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"id": "chunked"}
