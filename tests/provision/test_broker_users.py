"""The broker users of roles/offload_broker, as Ansible renders them: one per part, none an
administrator, each permission regex matching exactly the resources that part needs (as RabbitMQ
matches them: a regex search in the resource's name), fab's names for an inventory that sets none
the role's, and the clients' roles taking their URL and queue names from it. On a real broker:
test_broker_privileges.py."""

import re

import pytest
import yaml
from broker_users import PARTS, REPO, render, role_topology, role_users

from offload_lab import paths
from offload_lab.hosts import inventory

DEFAULT_EXCHANGE = "amq.default"
# delays the core may be given (RETRY_DELAYS_MS: 1..3600000 ms), each a delay queue
DELAYS_MS = (1, 1000, 4000, 16000, 3600000)
RETRY = ["retry_exchange", *(f"delay_queue_{ms}" for ms in DELAYS_MS)]


def allowed(regex: str, resource: str) -> bool:
    """RabbitMQ's check: the permission regex matches somewhere in the name (re:run, unanchored)."""
    return re.search(regex, resource) is not None


def test_fabs_user_password_file_vhost_and_queues_are_the_roles(tmp_path):
    controller, names = role_users()["controller"], role_topology()
    hosts = "\n".join(
        f"    {group}: {{hosts: {{{group}1: {{}}}}}}" for group in ("broker", "gateway", "core", "loadgen")
    )
    (tmp_path / "hosts.yml").write_text(f"all:\n  children:\n{hosts}\n")
    fab = inventory.load(str(tmp_path / "hosts.yml"), repo_root=tmp_path).names
    assert fab.broker.controller_user == controller.name
    assert controller.password_file == paths.PASSWORD_FILE and fab.unfollowed == ()
    assert fab.broker.vhost == names.vhost
    assert fab.broker.task_queue == names.task_queue
    assert fab.broker.dead_letter_queue == names.dead_letter_queue
    assert fab.broker.outcome_queue == names.ledger_queue
    assert fab.amqp_ports == {"broker1": int(render("offload_broker_amqp_port"))}


def test_one_user_per_part_none_an_administrator():
    users = role_users()
    assert set(users) == set(PARTS)
    assert len({u.name for u in users.values()}) == 3
    assert "offload" not in {u.name for u in users.values()}  # the retired shared administrator
    assert {part: u.tags for part, u in users.items()} == {
        "gateway": "",
        "core": "",
        "controller": "monitoring",
    }
    assert len({u.password_file for u in users.values()}) == 3
    assert all(u.password_file.parent == REPO / ".secrets" for u in users.values())


@pytest.mark.parametrize(
    "part, permission, resources",
    [
        # publish to the task exchange (named like the task queue), nothing else: not amq.default
        ("gateway", "configure", []),
        ("gateway", "write", ["task_queue"]),
        ("gateway", "read", []),
        # declare its topology; publish its records, name the DLX, bind the DLQ to it and the task
        # queue to the task exchange; consume, bind from the DLX and the task exchange. Retries:
        # declare the retry exchange and the delay queues, publish to the retry exchange (and a
        # task that gives up to the DLX), bind each delay queue to it; bind from the retry
        # exchange, declare each delay queue with the task exchange as its dead-letter exchange
        (
            "core",
            "configure",
            ["task_queue", "dead_letter_exchange", "dead_letter_queue", "ledger_queue", *RETRY],
        ),
        (
            "core",
            "write",
            [DEFAULT_EXCHANGE, "dead_letter_exchange", "dead_letter_queue", "task_queue", *RETRY],
        ),
        ("core", "read", ["task_queue", "dead_letter_exchange", *RETRY]),
        # take and purge the ledger, look at the dead letters (queue figures need the tag only)
        ("controller", "configure", []),
        ("controller", "write", []),
        ("controller", "read", ["ledger_queue", "dead_letter_queue"]),
    ],
)
def test_each_permission_matches_exactly_what_the_part_needs(part, permission, resources):
    names = role_topology()
    named = {
        field: getattr(names, field)
        for field in ("task_queue", "dead_letter_exchange", "dead_letter_queue", "ledger_queue")
    }
    # the core derives its retry exchange and delay queues from the task queue's name
    named |= {"retry_exchange": f"{names.task_queue}.retry"}
    named |= {f"delay_queue_{ms}": f"{names.task_queue}.retry.{ms}" for ms in DELAYS_MS}
    everything = [*named.values(), DEFAULT_EXCHANGE, "amq.direct", "amq.topic", "other", ""]
    # near misses: a prefix, a suffix, the dot as any character
    everything += [f"{n}x" for n in named.values()] + [f"x{n}" for n in named.values()]
    everything += [n.replace(".", "X") for n in named.values() if "." in n]
    # a delay is digits only: no other queue or exchange under the retry exchange's name
    retry = named["retry_exchange"]
    everything += [f"{retry}.", f"{retry}.x", f"{retry}.1x", f"{retry}.-1", f"{retry}.1.2", f"{retry}..1"]
    regex = getattr(role_users()[part], permission)
    wanted = {named.get(r, r) for r in resources}
    assert {r for r in everything if allowed(regex, r)} - {""} == wanted, regex


def test_the_regexes_follow_the_names_escaped():
    """Other names (e.g. set in group_vars) give regexes that match those names literally."""
    names = {
        "offload_broker_task_queue": "jobs+1",
        "offload_broker_dead_letter_exchange": "jobs.dlx",
        "offload_broker_dead_letter_queue": "jobs(dead)",
        "offload_broker_ledger_queue": "jobs.done",
    }
    users = render("offload_broker_users", **names)
    gateway, core, controller = users["gateway"], users["core"], users["controller"]
    for name in names.values():
        assert allowed(core["configure"], name), name
    assert not allowed(core["configure"], "jobss1") and not allowed(core["configure"], "jobsXdlx")
    assert allowed(core["read"], "jobs+1") and not allowed(core["read"], "jobs.done")
    assert allowed(core["write"], "jobs+1") and not allowed(core["write"], "jobss1")
    assert allowed(gateway["write"], "jobs+1") and not allowed(gateway["write"], "jobss1")
    assert not allowed(gateway["write"], DEFAULT_EXCHANGE) and not allowed(gateway["write"], "jobs.done")
    assert allowed(controller["read"], "jobs.done") and not allowed(controller["read"], "jobsXdone")
    assert allowed(controller["read"], "jobs(dead)") and not allowed(controller["read"], "jobs+1")
    # the retry names follow the task queue's, escaped too
    for permission in ("configure", "write", "read"):
        assert allowed(core[permission], "jobs+1.retry") and allowed(core[permission], "jobs+1.retry.250")
        assert not allowed(core[permission], "jobss1.retry.250") and not allowed(
            core[permission], "jobs+1XretryX250"
        )
        assert not allowed(core[permission], "tasks.retry.250")
    for user in (gateway, controller):
        assert not any(allowed(user[p], "jobs+1.retry.250") for p in ("configure", "write", "read"))
        assert not any(allowed(user[p], "jobs+1.retry") for p in ("configure", "write", "read"))


def _role_defaults(role: str) -> dict:
    return yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text())


def test_the_gateway_and_the_core_connect_as_their_own_users_to_the_roles_queues():
    gateway, core = _role_defaults("gateway"), _role_defaults("core_go")
    assert gateway["gateway_amqp_url"] == "{{ offload_broker_amqp_urls.gateway }}"
    assert core["core_go_amqp_url"] == "{{ offload_broker_amqp_urls.core }}"
    assert gateway["gateway_task_queue"] == core["core_go_task_queue"] == "{{ offload_broker_task_queue }}"
    assert core["core_go_dead_letter_exchange"] == "{{ offload_broker_dead_letter_exchange }}"
    assert core["core_go_dead_letter_queue"] == "{{ offload_broker_dead_letter_queue }}"
    assert core["core_go_ledger_queue"] == "{{ offload_broker_ledger_queue }}"
    template = (REPO / "roles" / "core_go" / "templates" / "core.env.j2").read_text()
    for line in (
        "DEAD_EXCHANGE={{ core_go_dead_letter_exchange }}",
        "DEAD_QUEUE={{ core_go_dead_letter_queue }}",
    ):
        assert line in template


def test_the_amqp_urls_carry_each_users_name_and_escaped_password():
    urls = render(
        "offload_broker_amqp_urls",
        offload_broker_addresses=["192.0.2.1"],
        groups={"gateway": ["gateway1"], "core": ["core1"]},
        inventory_hostname="gateway1",
        offload_broker_passwords={"gateway": "p@ss:w rd", "core": "secret", "controller": "x"},
    )
    assert urls == {
        "gateway": "amqp://offload-gateway:p%40ss%3Aw%20rd@192.0.2.1:5672/offload",
        "core": "amqp://offload-core:secret@192.0.2.1:5672/offload",
    }
