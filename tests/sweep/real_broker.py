"""The test broker of scripts/with-test-broker.sh, for the tests that use a real RabbitMQ."""

from __future__ import annotations

import os
import urllib.parse

import pika
import pytest

from offload_lab.services.broker import ManagementAPI


def real_broker() -> tuple[ManagementAPI, pika.BlockingConnection]:
    """Its management API (vhost /) and an AMQP connection; the test fails, naming the script,
    when run without it."""
    amqp_url, mgmt_url = os.environ.get("AMQP_URL"), os.environ.get("RABBITMQ_MGMT_URL")
    if not amqp_url or not mgmt_url:
        pytest.fail("run under scripts/with-test-broker.sh (as `make unit` does)", pytrace=False)
    u = urllib.parse.urlsplit(mgmt_url)
    api = ManagementAPI(f"{u.scheme}://{u.hostname}:{u.port}", u.username, u.password, vhost="/")
    return api, pika.BlockingConnection(pika.URLParameters(amqp_url))
