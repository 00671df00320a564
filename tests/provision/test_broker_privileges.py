"""The broker users on a real RabbitMQ (scripts/with-test-broker.sh): made by the rabbitmq role's own
tasks (roles/rabbitmq/tasks/users.yml, through the management API), with the real core built from
core-go/ running as its user; then every check of tests/broker_privilege_checks.py: what the
gateway, the core and the controller may do, and what each may not."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests
from broker_privilege_checks import CHECKS, BrokerUnderTest, check_id
from broker_users import BrokerUser, render, role_topology

REPO = Path(__file__).resolve().parents[2]
# made before the role's tasks run, which must delete it (rabbitmq_retired_users)
RETIRED_USER = "offload-retired-check"
PLAYBOOK = """
- name: The rabbitmq role's users, on the test broker through its management API
  hosts: broker
  connection: local
  gather_facts: false
  module_defaults:
    community.rabbitmq.rabbitmq_user:
      login_protocol: http
      login_host: "{{ test_broker_host }}"
      login_port: "{{ test_broker_management_port }}"
      login_user: "{{ test_broker_admin }}"
      login_password: "{{ test_broker_admin_password }}"
  tasks:
    - name: Users
      ansible.builtin.include_role:
        name: rabbitmq
        tasks_from: users.yml
"""


class Admin:
    """The test broker's administrator, through the management API."""

    def __init__(self, amqp_url: str, mgmt_url: str):
        amqp, mgmt = urlsplit(amqp_url), urlsplit(mgmt_url)
        self.host, self.amqp_port = amqp.hostname, amqp.port
        self.management_url = f"{mgmt.scheme}://{mgmt.hostname}:{mgmt.port}"
        self.management_port = mgmt.port
        self.user, self.password = mgmt.username or "", mgmt.password or ""

    def api(self, method: str, path: str, body: dict | None = None, ok=(200, 201, 204)):
        response = requests.request(
            method,
            f"{self.management_url}/api/{path}",
            json=body,
            auth=(self.user, self.password),
            timeout=10,
        )
        assert response.status_code in ok, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None


@pytest.fixture(scope="module")
def admin() -> Admin:
    amqp_url, mgmt_url = os.environ.get("AMQP_URL"), os.environ.get("RABBITMQ_MGMT_URL")
    if not amqp_url or not mgmt_url:
        pytest.fail(
            "AMQP_URL and RABBITMQ_MGMT_URL are not set: run under scripts/with-test-broker.sh", pytrace=False
        )
    return Admin(amqp_url, mgmt_url)


def _run_playbook(admin: Admin, workdir: Path, secrets: Path) -> str:
    (workdir / "users.yml").write_text(PLAYBOOK)
    extra = {
        "test_broker_host": admin.host,
        "test_broker_management_port": str(admin.management_port),
        "test_broker_admin": admin.user,
        "test_broker_admin_password": admin.password,
        "offload_broker_secrets_dir": str(secrets),
        "rabbitmq_retired_users": [RETIRED_USER],
        "ansible_python_interpreter": sys.executable,
    }
    (workdir / "vars.json").write_text(json.dumps(extra))
    # the role's dependency, offload_broker, checks its settings, which name the broker group
    (workdir / "hosts.ini").write_text("[broker]\nlocalhost\n")
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(REPO / "roles"), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "hosts.ini", "users.yml"]
        + ["-e", f"@{workdir / 'vars.json'}"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _changed(recap: str) -> int:
    match = re.search(r"^localhost\s*:.*\bchanged=(\d+)", recap, re.MULTILINE)
    assert match, recap
    return int(match.group(1))


@pytest.fixture(scope="module")
def provisioned(admin: Admin, tmp_path_factory) -> Iterator[dict]:
    """The role's vhost (made here, as the role's vhost.yml would), a user to retire, then the
    role's users.yml run twice. Everything made is deleted afterwards."""
    names = role_topology()
    vhost = quote(names.vhost, safe="")
    admin.api("DELETE", f"vhosts/{vhost}", ok=(204, 404))  # a run that died before its cleanup
    admin.api("PUT", f"vhosts/{vhost}")
    admin.api("PUT", f"users/{RETIRED_USER}", {"password": uuid.uuid4().hex, "tags": "administrator"})
    workdir = tmp_path_factory.mktemp("rabbitmq-users")
    secrets = workdir / ".secrets"
    secrets.mkdir(mode=0o700)
    users = {
        part: BrokerUser(part=part, password_file=Path(spec.pop("password_file")), **spec)
        for part, spec in render("offload_broker_users", offload_broker_secrets_dir=str(secrets)).items()
    }
    try:
        first = _run_playbook(admin, workdir, secrets)
        second = _run_playbook(admin, workdir, secrets)
        passwords = {part: user.password_file.read_text().strip() for part, user in users.items()}
        yield {"users": users, "passwords": passwords, "first": first, "second": second}
    finally:
        admin.api("DELETE", f"vhosts/{vhost}", ok=(204, 404))
        for name in [RETIRED_USER, *(user.name for user in users.values())]:
            admin.api("DELETE", f"users/{quote(name, safe='')}", ok=(204, 404))


@pytest.fixture(scope="module")
def core_binary(tmp_path_factory) -> Path:
    go = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"
    binary = tmp_path_factory.mktemp("core") / "offload-core"
    subprocess.run(
        [go, "build", "-o", str(binary), "./cmd/core"],
        cwd=REPO / "core-go",
        env=dict(os.environ, CGO_ENABLED="0"),
        check=True,
        timeout=300,
    )
    return binary


@pytest.fixture(scope="module")
def broker(admin: Admin, provisioned: dict, core_binary: Path, tmp_path_factory) -> Iterator[BrokerUnderTest]:
    """The broker as the three users see it, with the real core consuming as the core's user
    (it declares its topology itself: nobody else may)."""
    under_test = BrokerUnderTest(
        host=admin.host,
        amqp_port=admin.amqp_port,
        management_url=admin.management_url,
        users=provisioned["users"],
        passwords=provisioned["passwords"],
        topology=role_topology(),
    )
    names = under_test.topology
    port = _free_port()
    env = dict(
        os.environ,
        AMQP_URL=under_test.amqp_url("core"),
        TASK_QUEUE=names.task_queue,
        DEAD_EXCHANGE=names.dead_letter_exchange,
        DEAD_QUEUE=names.dead_letter_queue,
        LEDGER_QUEUE=names.ledger_queue,
        HTTP_ADDR=f"127.0.0.1:{port}",
        CONNECTION_NAME="privileges-core",
    )
    log_path = tmp_path_factory.mktemp("core-log") / "core.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(core_binary)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log_path.read_text()
            with contextlib.suppress(requests.RequestException):
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()
                if health["consumer"]["connected"]:
                    break
            assert time.monotonic() < deadline, f"the core did not start consuming:\n{log_path.read_text()}"
            time.sleep(0.1)
        yield under_test
    finally:
        process.terminate()
        process.wait(timeout=40)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_roles_tasks_make_exactly_the_roles_users_and_change_nothing_the_second_time(admin, provisioned):
    assert _changed(provisioned["first"]) > 0
    assert _changed(provisioned["second"]) == 0, provisioned["second"]
    vhost = role_topology().vhost
    for user in provisioned["users"].values():
        made = admin.api("GET", f"users/{quote(user.name, safe='')}")
        assert made["tags"] == ([user.tags] if user.tags else []), made
        [permissions] = admin.api("GET", f"users/{quote(user.name, safe='')}/permissions")
        assert permissions["vhost"] == vhost
        assert {k: permissions[k] for k in ("configure", "write", "read")} == user.permissions
    admin.api("GET", f"users/{RETIRED_USER}", ok=(404,))  # deleted


def test_the_passwords_were_generated_into_the_secrets_dir(provisioned):
    for part, password in provisioned["passwords"].items():
        assert re.fullmatch(r"[A-Za-z0-9]{32}", password), part
    assert len(set(provisioned["passwords"].values())) == 3


@pytest.mark.parametrize("check", CHECKS, ids=check_id)
def test_privileges(broker, check):
    check(broker)
