"""Processes on the controller, by pid: find them by command line, stop them, wait until they are gone.

`terminate` is the lab's one way of stopping a process: SIGTERM, a grace period, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path


def cmdline(pid: int) -> list[str]:
    """The process's arguments ([] if it is gone or a kernel thread)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def pids_where(match: Callable[[list[str]], bool]) -> list[int]:
    """Pids of the processes whose (non-empty) command line `match` accepts."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            args = cmdline(int(d.name))
            if args and match(args):
                pids.append(int(d.name))
    return pids


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (a zombie is dead for our purposes)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def signal_each(pids: Iterable[int], sig: signal.Signals) -> None:
    """Send `sig` to every pid; one that is already gone is fine."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def terminate(pids: list[int], grace_s: float, poll_s: float = 0.1) -> list[int]:
    """SIGTERM the processes, wait up to `grace_s` for them to end, SIGKILL those still alive.

    Returns the pids that had to be killed (the caller says so). Does not wait for the killed ones
    to be reaped: see `wait_reaped`."""
    signal_each(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(poll_s)
    killed = [p for p in pids if alive(p)]
    signal_each(killed, signal.SIGKILL)
    return killed


def wait_reaped(pids: list[int], timeout: float = 10) -> None:
    """Detached processes are reaped by PID 1, which here does so every few seconds: wait for it,
    so that `ps` shows nothing of the lab once down returns."""
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
