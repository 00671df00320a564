"""Unit tests of labctl's machinery: named steps, the error report, the launcher on the system Python."""

import subprocess
from pathlib import Path

import pytest

from lab import cli
from lab.locallab import LocalLab, StepFailed

REPO = Path(__file__).resolve().parents[2]


def test_a_failing_step_is_named(tmp_path):
    lab = LocalLab(state=tmp_path / "state", cache=tmp_path / "cache")
    failed = pytest.raises(StepFailed, match=r"step 'bridge offlab0' failed: .*boom")
    with failed, lab.step("bridge offlab0"):
        raise RuntimeError("boom")
    failed = pytest.raises(StepFailed, match=r"step 'base image' failed: `false` exited 1")
    with failed, lab.step("base image"):
        lab.run(["false"])


def test_main_reports_the_failed_step(monkeypatch, capsys, tmp_path):
    def boom(lab):
        with lab.step("apt-cacher-ng"):
            raise OSError("port taken")

    monkeypatch.setattr(cli, "up", boom)
    monkeypatch.setenv("OFFLAB_STATE", str(tmp_path))
    assert cli.main(["up"]) == 1
    assert "labctl up: step 'apt-cacher-ng' failed: OSError: port taken" in capsys.readouterr().err


def test_labctl_runs_from_any_directory(tmp_path):
    labctl = str(REPO / "lab" / "labctl")
    p = subprocess.run([labctl, "down", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "usage: lab/labctl down" in p.stdout and "--purge" in p.stdout


def test_the_lab_needs_only_the_standard_library():
    # labctl runs before the venv exists: the system Python without site-packages (-S) must do
    cmd = ["/usr/bin/python3", "-S", "-m", "lab", "--help"]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "{up,status,down,clean,inventory}" in p.stdout


def test_the_profile_up_is_recorded_for_the_other_commands(tmp_path):
    assert LocalLab(state=tmp_path).profile == "default"
    lab = LocalLab(state=tmp_path, profile="cluster")
    assert [h.name for h in lab.hosts][:3] == ["broker1", "broker2", "broker3"]
    lab.record_profile()
    # status, down, inventory: no profile given, the recorded one
    assert LocalLab(state=tmp_path).profile == "cluster"
    assert len(LocalLab(state=tmp_path).hosts) == 9
    (tmp_path / "profile").write_text("nosuch\n")
    assert LocalLab(state=tmp_path).profile == "default"


def test_one_profile_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(cli.hosts, "nspawn_pids", lambda h: [])  # whatever runs on this machine
    default = LocalLab(state=tmp_path)
    default.record_profile()
    default.host_dir(default.hosts[0]).mkdir(parents=True)  # the default broker's disk
    cluster = LocalLab(state=tmp_path, profile="cluster")
    refused = r"the default profile is up \(broker\): run `lab/labctl down` first"
    with pytest.raises(StepFailed, match=refused):
        cli.check_one_profile(cluster)
    cli.check_one_profile(default)  # up again on the profile that is up is fine
    # down (with the default profile recorded) also takes a cluster host left behind
    assert "broker1" not in [h.name for h in default.hosts]
    assert [h.name for h in default.other_profiles_hosts()][:2] == ["broker1", "broker2"]


def test_up_takes_a_profile():
    assert cli.parse_args(["up"]).profile == "default"
    assert cli.parse_args(["up", "--profile", "cluster"]).profile == "cluster"
    with pytest.raises(SystemExit):
        cli.parse_args(["up", "--profile", "nosuch"])


def test_one_release_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(cli.hosts, "nspawn_pids", lambda h: [])
    assert LocalLab(state=tmp_path).release == "trixie"  # Debian 13 by default
    old = LocalLab(state=tmp_path, release="bookworm")
    old.record_release()
    assert LocalLab(state=tmp_path).release == "bookworm"  # status, down: the recorded one
    cli.check_one_release(LocalLab(state=tmp_path, release="trixie"))  # no host yet: fine
    old.host_dir(old.hosts[0]).mkdir(parents=True)
    with pytest.raises(StepFailed, match=r"hosts run bookworm \(broker\): run `lab/labctl down` first"):
        cli.check_one_release(LocalLab(state=tmp_path, release="trixie"))
    cli.check_one_release(old)


def test_up_takes_a_release():
    assert cli.parse_args(["up"]).release == "trixie"
    assert cli.parse_args(["up", "--release", "bookworm"]).release == "bookworm"
    with pytest.raises(SystemExit):
        cli.parse_args(["up", "--release", "sid"])
