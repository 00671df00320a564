"""Faults in a spec (validation) and performing them (FaultRunner) against a recording remote."""

from __future__ import annotations

from pathlib import Path

import pytest

from offload_lab.hosts.remote import Result
from offload_lab.plan import spec as spec_mod
from offload_lab.plan.fault_spec import ACTIONS, FaultSpec, fault_host_problems
from offload_lab.plan.steps import expand_steps
from offload_lab.services.faults import COMMANDS, HEAL_COMMAND, FaultRunner, partition_command

BASE = {"name": "f", "rates": [200], "duration_s": 30, "max_vus": 300}


def with_faults(faults, **series):
    return {**BASE, "series": [{"label": "x", "modes": ["async"], "faults": faults, **series}]}


def test_faults_reach_their_steps():
    spec = spec_mod.validate(
        with_faults(
            [{"action": "partition", "at_s": 10, "duration_s": 5}, {"action": "core_kill", "at_s": 2}]
        )
    )
    (step,) = expand_steps(spec)
    assert [f.action for f in step.faults] == ["core_kill", "partition"]  # in time order
    assert step.faults[1] == FaultSpec("partition", 10.0, 5)
    # host None: the group's first host
    assert step.as_dict()["faults"][0] == {
        "action": "core_kill",
        "at_s": 2.0,
        "duration_s": None,
        "host": None,
    }


@pytest.mark.parametrize(
    "fault, message",
    [
        ({"action": "partitio", "at_s": 1}, "action: must be one of broker_restart"),
        ({"action": "core_kill", "at_s": 30}, "at_s: must be within the step's 30 s"),
        ({"action": "core_kill", "at_s": -1}, "at_s"),
        ({"action": "partition", "at_s": 1}, "duration_s"),
        ({"action": "core_kill", "at_s": 1, "duration_s": 3}, "only partition takes a duration"),
        ({"action": "core_kill", "at_s": 1, "when": 3}, "when: unknown key"),
        ("core_kill", "must be a mapping"),
    ],
)
def test_bad_faults_are_named(fault, message):
    with pytest.raises(spec_mod.SpecError) as info:
        spec_mod.validate(with_faults([fault]))
    assert any(message in p and "series[0].faults[0]" in p for p in info.value.problems), info.value.problems


class Recorder:
    def __init__(self, name, fail=None):
        self.host = type("H", (), {"name": name})()
        self.commands = []
        self.fail = fail

    def run(self, command, check=True, timeout=None, sudo=False):
        assert sudo and timeout  # faults act as root and are bounded
        self.commands.append(command)
        if self.fail and self.fail in command:
            return Result("", "Failed to kill unit", 1)
        return Result("", "", 0)


class Clock:
    """A clock the runner's waits advance (no real sleeping)."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        self.t += 0.01
        return self.t


def runner(faults, **remotes):
    clock = Clock()
    hosts = {g: Recorder(g) for g in ("broker", "core", "gateway")}
    hosts.update(remotes)
    r = FaultRunner(faults, hosts, "10.77.77.11", {"10.77.77.11": 5672}, clock=clock)
    r._stop.wait = lambda s: setattr(clock, "t", clock.t + s) or False  # time passes while waiting
    return r, hosts, clock


def test_each_fault_runs_at_its_second_and_is_recorded():
    faults = (FaultSpec("core_kill", 2.0), FaultSpec("partition", 5.0, 3.0))
    r, hosts, clock = runner(faults)
    r.start(1000.0)
    records = r.join()
    assert [x["action"] for x in records] == ["core_kill", "partition"]
    assert records[0]["offset_s"] == pytest.approx(2.0, abs=0.1) and records[0]["ok"]
    assert records[0]["host"] == "core"
    assert hosts["core"].commands == ["systemctl kill --signal=SIGKILL offload-core"]
    part = records[1]
    assert hosts["gateway"].commands == [partition_command("10.77.77.11", 3.0, 5672), HEAL_COMMAND]
    assert part["healed_unix_s"] - part["started_unix_s"] == pytest.approx(3.0, abs=0.1)


def test_a_failed_action_is_recorded_not_raised():
    r, hosts, _ = runner((FaultSpec("broker_restart", 0.0),), broker=Recorder("broker", fail="restart"))
    r.start(1000.0)
    (rec,) = r.join()
    assert rec["ok"] is False and "Failed to kill unit" in rec["error"]


def test_abort_heals_a_partition():
    r, hosts, _ = runner((FaultSpec("partition", 20.0, 5.0),))
    r.abort()
    assert hosts["gateway"].commands == [HEAL_COMMAND]


def test_every_action_names_a_group_with_a_host():
    assert {a.group for a in ACTIONS.values()} <= {"broker", "core", "gateway"}
    cmd = partition_command("10.77.77.11", 5, 5672)
    assert cmd.startswith("systemd-run --quiet --collect --on-active=5s")  # heals itself
    assert (
        "ip daddr 10.77.77.11 tcp dport 5672 drop" in cmd
        and "ip saddr 10.77.77.11 tcp sport 5672 drop" in cmd
    )


def test_every_action_a_spec_may_ask_for_has_its_command_and_a_lasting_one_its_heal():
    assert set(COMMANDS) == set(ACTIONS)
    for name, action in ACTIONS.items():
        assert (COMMANDS[name].heal is not None) == action.needs_duration, name


# ------------------------------------------------------------------ picking a host of a group


class Host:
    def __init__(self, name, address):
        self.name, self.address = name, address


def cluster_runner(faults):
    """Three brokers and one gateway, each group's remotes in inventory order; the third broker's
    AMQP port is its own."""
    brokers = [Recorder(f"broker{i}") for i in (1, 2, 3)]
    for i, b in enumerate(brokers, start=1):
        b.host = Host(f"broker{i}", f"10.77.77.2{i}")
    gateway, core = Recorder("gateway1"), Recorder("core1")
    clock = Clock()
    amqp_ports = {"10.77.77.21": 5672, "10.77.77.22": 5672, "10.77.77.23": 5673}
    r = FaultRunner(
        faults,
        {"broker": brokers, "gateway": [gateway], "core": [core]},
        "10.77.77.21",
        amqp_ports,
        clock=clock,
    )
    r._stop.wait = lambda s: setattr(clock, "t", clock.t + s) or False
    return r, brokers, gateway


def test_a_fault_may_pick_its_host_by_position_or_name():
    spec = spec_mod.validate(
        with_faults(
            [
                {"action": "broker_kill", "at_s": 1, "host": 2},
                {"action": "broker_restart", "at_s": 2, "host": "broker3"},
            ]
        )
    )
    (step,) = expand_steps(spec)
    assert [f.host for f in step.faults] == [2, "broker3"]
    assert step.as_dict()["faults"][0] == {
        "action": "broker_kill",
        "at_s": 1.0,
        "duration_s": None,
        "host": 2,
    }


@pytest.mark.parametrize("host", [0, -1, True, "", 1.5, [2]])
def test_a_bad_host_choice_is_named(host):
    with pytest.raises(spec_mod.SpecError) as info:
        spec_mod.validate(with_faults([{"action": "broker_kill", "at_s": 1, "host": host}]))
    assert any("faults[0].host" in p for p in info.value.problems), info.value.problems


def test_host_choices_are_checked_against_the_inventory_before_any_load():
    groups = {"broker": ["broker1", "broker2", "broker3"], "gateway": ["gateway1"], "core": ["core1"]}
    good = (
        FaultSpec("broker_kill", 1, host=3),
        FaultSpec("partition", 2, 1, host="broker2"),
        FaultSpec("core_kill", 3),
    )
    assert fault_host_problems(good, groups) == []
    bad = (FaultSpec("broker_kill", 1, host=4), FaultSpec("partition", 2, 1, host="gateway1"))
    problems = fault_host_problems(bad, groups)
    assert len(problems) == 2
    assert "host 4 is not one of the broker group's hosts (1..3 or broker1, broker2, broker3)" in problems[0]
    assert "'gateway1'" in problems[1] and "broker group" in problems[1]


def test_a_broker_fault_runs_on_the_picked_node_and_says_which():
    r, brokers, _ = cluster_runner((FaultSpec("broker_kill", 1.0, host=2), FaultSpec("broker_restart", 2.0)))
    r.start(1000.0)
    picked, default = r.join()
    assert brokers[1].commands and brokers[1].commands[0].startswith(
        "systemctl kill --signal=SIGKILL rabbitmq-server"
    )
    assert brokers[0].commands == ["systemctl restart rabbitmq-server"] and brokers[2].commands == []
    assert (picked["host"], picked["host_choice"], picked["ok"]) == ("broker2", 2, True)
    assert default["host"] == "broker1" and "host_choice" not in default


def test_a_partition_cuts_the_gateway_from_the_picked_broker():
    r, _, gateway = cluster_runner((FaultSpec("partition", 1.0, 2.0, host="broker3"),))
    r.start(1000.0)
    (record,) = r.join()
    assert gateway.commands == [partition_command("10.77.77.23", 2.0, 5673), HEAL_COMMAND]
    assert "tcp dport 5673 drop" in gateway.commands[0]
    assert (record["host"], record["peer"], record["peer_host"]) == ("gateway1", "10.77.77.23", "broker3")


def test_the_sweep_refuses_a_host_the_inventory_lacks_before_any_load(tmp_path):
    from offload_lab.cli import commands
    from offload_lab.cli.usage import UsageError

    spec = tmp_path / "picky.yml"
    spec.write_text(
        "name: picky\nrates: [50]\nduration_s: 30\nmax_vus: 100\n"
        "series:\n  - label: x\n    modes: [async]\n"
        "    faults: [{action: broker_kill, at_s: 5, host: broker2}]\n"
    )
    with pytest.raises(UsageError) as info:
        commands.plan(str(spec), {}, str(Path(__file__).resolve().parents[2] / "inventory" / "example"))
    assert "host 'broker2' is not one of the broker group's hosts (1..1 or broker1)" in str(info.value)
