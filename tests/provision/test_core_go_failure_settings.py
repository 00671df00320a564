"""The core_go role's failure and retry settings: core.env carries TRANSIENT_FAIL_RATE,
PERMANENT_FAIL_RATE, RETRY_DELAYS_MS and RETRY_QUEUE_MAX_LENGTH (never the retired FAIL_RATE),
and the role's preflight refuses a bad value, naming the setting, before it changes anything
(run by ansible-playbook on this machine, one inventory host per case)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "core_go"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def render_env(**overrides) -> dict[str, str]:
    """core.env as the role writes it (the template uses Jinja's own filters only)."""
    variables = {
        **DEFAULTS,
        "ansible_managed": "managed",
        "core_go_amqp_url": "amqp://offload-core:pw@10.0.0.1:5672/offload",
        "core_go_stats_reset_token": "token",
        "core_go_listen_address": "10.0.0.3",
        "core_go_task_queue": "tasks",
        "core_go_dead_letter_exchange": "tasks.dlx",
        "core_go_dead_letter_queue": "tasks.dead",
        "core_go_ledger_queue": "tasks.done",
        **overrides,
    }
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(
        (ROLE / "templates" / "core.env.j2").read_text()
    )
    lines = [line for line in template.render(variables).splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_core_env_carries_the_failure_settings_and_not_fail_rate():
    env = render_env()
    assert env["TRANSIENT_FAIL_RATE"] == "0" and env["PERMANENT_FAIL_RATE"] == "0"
    assert env["RETRY_DELAYS_MS"] == "1000,4000,16000" and env["RETRY_QUEUE_MAX_LENGTH"] == "100000"
    assert "FAIL_RATE" not in env
    env = render_env(
        core_go_transient_fail_rate=0.1,
        core_go_permanent_fail_rate=0.001,
        core_go_retry_delays_ms=["500", 2000],
        core_go_retry_queue_max_length=50,
    )
    assert (env["TRANSIENT_FAIL_RATE"], env["PERMANENT_FAIL_RATE"]) == ("0.1", "0.001")
    assert (env["RETRY_DELAYS_MS"], env["RETRY_QUEUE_MAX_LENGTH"]) == ("500,2000", "50")
    assert render_env(core_go_retry_delays_ms=[])["RETRY_DELAYS_MS"] == ""  # no retry


# one host per case: its settings, and the start of the message its preflight must fail with
# (None: it passes)
CASES = {
    "good": ({}, None),
    "good_rates": ({"core_go_transient_fail_rate": 1, "core_go_permanent_fail_rate": 0.001}, None),
    "no_retry": ({"core_go_retry_delays_ms": []}, None),
    "ten_delays": ({"core_go_retry_delays_ms": list(range(1, 11))}, None),
    "transient_high": (
        {"core_go_transient_fail_rate": 1.5},
        "core_go_transient_fail_rate (TRANSIENT_FAIL_RATE)",
    ),
    "permanent_low": (
        {"core_go_permanent_fail_rate": -0.1},
        "core_go_permanent_fail_rate (PERMANENT_FAIL_RATE)",
    ),
    "delays_descending": (
        {"core_go_retry_delays_ms": [4000, 1000]},
        "core_go_retry_delays_ms (RETRY_DELAYS_MS)",
    ),
    "delays_repeated": (
        {"core_go_retry_delays_ms": [1000, 1000]},
        "core_go_retry_delays_ms (RETRY_DELAYS_MS)",
    ),
    "delay_zero": ({"core_go_retry_delays_ms": [0, 1000]}, "core_go_retry_delays_ms (RETRY_DELAYS_MS)"),
    "delay_too_long": ({"core_go_retry_delays_ms": [3600001]}, "core_go_retry_delays_ms (RETRY_DELAYS_MS)"),
    "eleven_delays": (
        {"core_go_retry_delays_ms": list(range(1, 12))},
        "core_go_retry_delays_ms (RETRY_DELAYS_MS)",
    ),
    "length_zero": (
        {"core_go_retry_queue_max_length": 0},
        "core_go_retry_queue_max_length (RETRY_QUEUE_MAX_LENGTH)",
    ),
    "old_name": ({"core_go_fail_rate": 0.1}, "core_go_fail_rate (FAIL_RATE) is gone"),
    "old_env": ({"core_go_extra_env": {"FAIL_RATE": "0.1"}}, "core_go_fail_rate (FAIL_RATE) is gone"),
}

PLAYBOOK = """
- name: The core_go role's preflight, one host per case
  hosts: cores
  gather_facts: false
  tasks:
    - name: Preflight
      ansible.builtin.include_role:
        name: core_go
        tasks_from: preflight.yml
"""


@pytest.fixture(scope="module")
def preflight(tmp_path_factory) -> dict[str, str | None]:
    """Each case's failure message (None: its preflight passed)."""
    workdir = tmp_path_factory.mktemp("core-go-preflight")
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "ansible_host": "127.0.0.1",
                "core_go_binary_src": str(workdir / "playbook.yml"),  # the binary's stand-in
            },
            "children": {
                "broker": {"hosts": {"broker1": {}}},
                "cores": {"hosts": {name: settings for name, (settings, _) in CASES.items()}},
            },
        }
    }
    (workdir / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (workdir / "playbook.yml").write_text(PLAYBOOK)
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=str(REPO / "roles"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_NOCOLOR="1",
    )
    env.pop("ANSIBLE_CONFIG", None)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "hosts.yml", "playbook.yml"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    failures: dict[str, str | None] = {name: None for name in CASES}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, outcome in task["hosts"].items():
                if outcome.get("failed"):
                    failures[host] = outcome.get("msg", "")
    assert set(report["stats"]) >= set(CASES), result.stderr
    return failures


@pytest.mark.parametrize("case", CASES)
def test_preflight_names_the_bad_setting(preflight, case):
    expected = CASES[case][1]
    if expected is None:
        assert preflight[case] is None, preflight[case]
    else:
        assert preflight[case] is not None and preflight[case].startswith(expected), preflight[case]
