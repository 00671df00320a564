"""The e2e sweep switched a gateway setting through a login that is not root: the steps recorded
it on top of the env file fab read as root, and the gateway's own log shows it ran with it.

scripts/e2e.sh passes `--gateway GUNICORN_WORKERS=3`; the lab provisions 2 workers."""

import subprocess
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from broker_users import role_users

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SSH_CONFIG = REPO / ".lab" / "ssh" / "config"


def unix_time(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def switched(run):
    overrides = {k: str(v) for k, v in (run["overrides"].get("gateway") or {}).items()}
    assert overrides, "the e2e sweep must switch a gateway setting (--gateway in scripts/e2e.sh)"
    return overrides


def test_the_lab_logs_in_as_admin_not_root():
    inventory = yaml.safe_load((REPO / "inventory/lab/hosts.yml").read_text())
    users = {
        name: host["ansible_user"]
        for group in inventory["all"]["children"].values()
        for name, host in group["hosts"].items()
    }
    assert set(users.values()) == {"admin"}, users


def test_the_provisioned_env_files_were_read_as_root(run):
    # root-only files (mode 0640): only through sudo does fab see the broker URL in them
    gateway, core = run["settings"]["gateway"], run["settings"]["core"]
    users = role_users()  # each with a broker user of its own
    for part, settings in (("gateway", gateway), ("core", core)):
        assert settings["AMQP_URL"].startswith(f"amqp://{users[part].name}:***@"), settings
    assert gateway["GUNICORN_WORKERS"] == "2"


def test_every_step_recorded_the_switched_settings(run, steps, switched):
    provisioned = run["settings"]["gateway"]
    for step in steps:
        assert step["step"]["gateway_overrides"] == switched, step["step"]
        gateway = step["step"]["gateway"]
        assert {k: gateway[k] for k in switched} == switched, step["step"]
        # what was not switched is what the env file holds
        assert gateway["PUBLISHER"] == provisioned["PUBLISHER"], step["step"]
    restarts = [t["gateway_restart_s"] for t in run["timing"]["steps"]]
    assert restarts[0] > 0 and restarts[1:] == [0.0] * (len(restarts) - 1), restarts


def gunicorn_boots(since: float, until: float) -> list[tuple[float, int]]:
    """(when, worker count) of each gunicorn start on the gateway, from its journal (read with sudo)."""
    journal = subprocess.run(
        ["ssh", "-F", str(SSH_CONFIG), "gateway"]
        + ["sudo -n journalctl --no-pager -o short-unix -u offload-gateway", f"--since @{int(since)}"]
        + [f"--until @{int(until) + 10}"],  # a worker may log its start just after the run ended
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert journal.returncode == 0, journal.stderr
    boots: list[tuple[float, int]] = []
    for line in journal.stdout.splitlines():
        if "Starting gunicorn" in line:
            boots.append((float(line.split()[0]), 0))
        elif "Booting worker with pid" in line and boots:
            boots[-1] = (boots[-1][0], boots[-1][1] + 1)
    return boots


def test_the_gateway_ran_with_the_switched_settings_and_was_restored(run, steps, switched):
    assert "GUNICORN_WORKERS" in switched, "this check counts gunicorn's workers"
    first_load = steps[0]["clock"]["load_started_unix_s"]
    last_load_end = steps[-1]["clock"]["load_ended_unix_s"]
    boots = gunicorn_boots(unix_time(run["started_at"]), unix_time(run["ended_at"]))
    # one start with the switched settings before the first step's load, none during the
    # steps (the settings did not change), one with the provisioned settings at the end
    assert len(boots) == 2, boots
    (started, workers), (restored, workers_after) = boots
    assert started < first_load and workers == int(switched["GUNICORN_WORKERS"]), boots
    assert restored > last_load_end and workers_after == int(run["settings"]["gateway"]["GUNICORN_WORKERS"])
