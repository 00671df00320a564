"""lab.processes.terminate, the lab's one SIGTERM -> grace period -> SIGKILL, on real child processes."""

import signal
import subprocess
import time

from lab import processes


def test_terminate_stops_a_process_with_sigterm():
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert processes.alive(child.pid)
        t0 = time.monotonic()
        assert processes.terminate([child.pid], grace_s=5) == []
        assert time.monotonic() - t0 < 2  # it ended on SIGTERM, no waiting out the grace period
        assert child.wait(timeout=5) == -signal.SIGTERM
        assert not processes.alive(child.pid)
    finally:
        child.kill()
        child.wait()


def test_terminate_kills_a_process_that_ignores_sigterm():
    # `exec` keeps the ignored SIGTERM; "ready" says the trap is set before we signal
    child = subprocess.Popen(
        ["bash", "-c", "trap '' TERM; echo ready; exec sleep 30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline() == "ready\n"
        t0 = time.monotonic()
        assert processes.terminate([child.pid], grace_s=0.5) == [child.pid]
        assert time.monotonic() - t0 >= 0.5  # it had its grace period
        assert child.wait(timeout=5) == -signal.SIGKILL
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def test_a_zombie_counts_as_gone():
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while processes.alive(child.pid) and time.monotonic() < deadline:  # exited, not yet reaped
        time.sleep(0.01)
    assert not processes.alive(child.pid)
    assert processes.terminate([child.pid], grace_s=5) == []
    assert child.wait(timeout=5) == 0


def test_pids_where_finds_a_process_by_its_command_line():
    child = subprocess.Popen(["sleep", "29.5"])
    try:
        # until the child has exec'd, /proc shows the forking Python's command line (seen in CI)
        deadline = time.monotonic() + 5
        while processes.cmdline(child.pid) != ["sleep", "29.5"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert processes.pids_where(lambda args: args == ["sleep", "29.5"]) == [child.pid]
        assert processes.cmdline(child.pid) == ["sleep", "29.5"]
    finally:
        child.kill()
        child.wait()
