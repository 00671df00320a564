"""The broker users of the provisioned lab: every check of tests/broker_privilege_checks.py (what the
gateway, the core and the controller may do, and what each may not) against the lab's broker, as
the users the provisioning made, with the passwords it generated into .secrets/ and the lab's own
core consuming. Needs the lab up and provisioned (site.yml), no sweep:

    .venv/bin/pytest -q -m e2e tests/e2e/test_e2e_broker_privileges.py

It takes every record in the ledger (tasks.done) on the way, as fab does before a step. The lab's
cores record to a local file by default (core_go_ledger: file); for these checks they are
switched to the broker ledger (LEDGER=broker, as a sweep's `instruments: {ledger: broker}` does),
and back afterwards."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pika
import pika.exceptions
import pytest
from broker_privilege_checks import CHECKS, BrokerUnderTest, check_id
from broker_users import role_topology, role_users

from offload_lab.hosts import inventory
from offload_lab.hosts.remote import Remote
from offload_lab.services.core import CoreSettings

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# the shared administrator's password, from before the broker had a user per part
OLD_PASSWORD_FILE = REPO / ".secrets" / "rabbitmq_password"
SSH_CONFIG = REPO / ".lab" / "ssh" / "config"


@pytest.fixture(scope="module")
def broker_ledger():
    """The lab's cores on the broker ledger for the module, then as provisioned again."""
    lab = inventory.load()
    remotes = {h.name: Remote(h) for h in lab.cores}
    cores = CoreSettings(remotes, {h.name: lab.names.http_url(h) for h in lab.cores})
    cores.begin()
    cores.apply({"LEDGER": "broker"})
    try:
        yield
    finally:
        cores.restore()
        for remote in remotes.values():
            remote.close()


@pytest.fixture(scope="module")
def broker(broker_ledger) -> BrokerUnderTest:
    lab = inventory.load()
    users = role_users()
    missing = [str(u.password_file) for u in users.values() if not u.password_file.is_file()]
    if missing:
        pytest.fail(f"no password files {missing}: provision the lab first (ansible-playbook site.yml)")
    return BrokerUnderTest(
        host=lab.broker.address,
        amqp_port=lab.names.amqp_ports[lab.broker.name],
        management_url=lab.names.http_url(lab.broker),
        users=users,
        passwords={part: u.password_file.read_text().strip() for part, u in users.items()},
        topology=role_topology(),
    )


@pytest.mark.parametrize("check", CHECKS, ids=check_id)
def test_privileges(broker, check):
    check(broker)


def test_the_old_shared_administrator_is_gone(broker):
    """The provisioning deletes the user `offload` (rabbitmq_retired_users): the broker's own user
    list lacks it. Where its password file is still on the controller (a checkout provisioned
    before the broker had a user per part), that password is refused too."""
    lab = inventory.load()
    listed = subprocess.run(
        ["ssh", "-F", str(SSH_CONFIG), lab.broker.name, "sudo -n rabbitmqctl -q list_users --formatter json"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert listed.returncode == 0, listed.stderr
    users = {u["user"] for u in json.loads(listed.stdout)}
    assert {u.name for u in role_users().values()} <= users, users  # the listing is the real one
    assert "offload" not in users, users
    if OLD_PASSWORD_FILE.is_file():
        parameters = pika.ConnectionParameters(
            host=broker.host,
            port=broker.amqp_port,
            virtual_host=broker.topology.vhost,
            credentials=pika.PlainCredentials("offload", OLD_PASSWORD_FILE.read_text().strip()),
            connection_attempts=1,
            socket_timeout=10,
        )
        with pytest.raises(pika.exceptions.ProbableAuthenticationError, match="ACCESS_REFUSED"):
            pika.BlockingConnection(parameters).close()
