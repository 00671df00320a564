"""/sync against a fake core on loopback."""

import json
import time


def test_sync_forwards_the_body_and_returns_the_core_answer(make_app, fake_core):
    client = make_app(CORE_URL=fake_core.url).test_client()
    response = client.post("/sync", data=b'{"work_ms": 5, "tag": "x"}', content_type="application/json")
    assert response.status_code == 200
    assert response.get_json() == {"worked": True, "request": {"work_ms": 5, "tag": "x"}}
    assert fake_core.requests == [b'{"work_ms": 5, "tag": "x"}']


def test_sync_sends_an_empty_object_for_an_empty_body(make_app, fake_core):
    client = make_app(CORE_URL=fake_core.url).test_client()
    assert client.post("/sync").status_code == 200
    assert json.loads(fake_core.requests[0]) == {}


def test_sync_does_not_forward_bad_bodies(make_app, fake_core):
    client = make_app(CORE_URL=fake_core.url).test_client()
    assert client.post("/sync", data=b"[]").status_code == 400
    assert fake_core.requests == []


def test_unreachable_core_gets_502_quickly(make_app, free_port):
    client = make_app(CORE_URL=f"http://127.0.0.1:{free_port}").test_client()
    started = time.monotonic()
    response = client.post("/sync", json={})
    assert time.monotonic() - started < 1
    assert response.status_code == 502
    assert response.get_json()["error"].startswith("core unreachable")


def test_core_error_status_gets_502(make_app, fake_core):
    fake_core.status = 404  # not a 5xx: not the core failing a task
    response = make_app(CORE_URL=fake_core.url).test_client().post("/sync", json={})
    assert response.status_code == 502
    assert response.get_json() == {"error": "core answered 404"}


def test_slow_core_gets_504_within_the_timeout(make_app, fake_core):
    fake_core.delay_s = 2
    client = make_app(CORE_URL=fake_core.url, CORE_TIMEOUT_S="0.3").test_client()
    started = time.monotonic()
    response = client.post("/sync", json={})
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.get_json() == {"error": "core did not answer within 0.3 s"}
    assert 0.3 <= elapsed < 1
