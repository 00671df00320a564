"""The lab's network: the bridge the hosts hang on, and the lab's own apt-cacher-ng on it.

The hosts have no route out; apt inside them reaches Debian only through this apt-cacher-ng
(config: lab.plan.acng_config_text; files under .lab/acng/, cache under <cache>/apt-cacher-ng).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time

from lab import processes
from lab.locallab import LocalLab, StepFailed
from lab.plan import ACNG_BACKENDS, ACNG_PORT, BRIDGE, BRIDGE_ADDRESS, PREFIX_LEN, acng_config_text

ACNG_STOP_TIMEOUT_S = 10


# ---- bridge


def bridge_up(lab: LocalLab) -> bool:
    """The bridge exists, is up and has the lab's address."""
    p = lab.run(["ip", "-j", "addr", "show", "dev", BRIDGE], check=False)
    if p.returncode != 0:
        return False
    info = json.loads(p.stdout or "[]")
    return (
        bool(info)
        and any(a.get("local") == BRIDGE_ADDRESS for a in info[0].get("addr_info", []))
        and "UP" in info[0].get("flags", [])
    )


def ensure_bridge(lab: LocalLab) -> None:
    if bridge_up(lab):
        lab.log(f"    {BRIDGE} already up")
        return
    if lab.run(["ip", "link", "show", BRIDGE], check=False).returncode != 0:
        lab.run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    lab.run(["ip", "addr", "replace", f"{BRIDGE_ADDRESS}/{PREFIX_LEN}", "dev", BRIDGE])
    lab.run(["ip", "link", "set", BRIDGE, "up"])


def remove_bridge(lab: LocalLab) -> None:
    if lab.run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
        lab.run(["ip", "link", "del", BRIDGE])


# ---- apt-cacher-ng


def port_open(addr: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    except OSError:
        return False


def acng_answers() -> bool:
    """Something accepts connections on the apt-cacher-ng port of the bridge."""
    return port_open(BRIDGE_ADDRESS, ACNG_PORT)


def acng_pid(lab: LocalLab) -> int | None:
    """The pid of the lab's apt-cacher-ng if it is running (checked by its command line)."""
    try:
        pid = int((lab.acng_dir / "pid").read_text())
    except (OSError, ValueError):
        return None
    args = processes.cmdline(pid)
    if args and "apt-cacher-ng" in args[0] and str(lab.acng_dir / "conf") in args:
        return pid
    return None


def ensure_acng(lab: LocalLab) -> None:
    """Start the lab's apt-cacher-ng (detached, in its own session) unless it runs and answers."""
    if acng_pid(lab) and acng_answers():
        lab.log(f"    already running (pid {acng_pid(lab)})")
        return
    stop_acng(lab)
    conf, logd, rund = lab.acng_dir / "conf", lab.acng_dir / "log", lab.acng_dir / "run"
    cache = lab.cache / "apt-cacher-ng"
    for d in (conf, logd, rund, cache):
        d.mkdir(parents=True, exist_ok=True)
    (conf / "acng.conf").write_text(acng_config_text(cache, logd, rund))
    for name, text in ACNG_BACKENDS.items():
        (conf / name).write_text(text)
    with open(lab.acng_dir / "stdout.log", "ab") as out:
        p = subprocess.Popen(
            ["/usr/sbin/apt-cacher-ng", "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (lab.acng_dir / "pid").write_text(str(p.pid))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise StepFailed(f"apt-cacher-ng exited {p.returncode}; see {lab.acng_dir}/stdout.log")
        if acng_answers():
            return
        time.sleep(0.2)
    raise StepFailed(f"apt-cacher-ng does not answer on {BRIDGE_ADDRESS}:{ACNG_PORT}")


def stop_acng(lab: LocalLab) -> None:
    pid = acng_pid(lab)
    if not pid:
        return
    for killed in processes.terminate([pid], ACNG_STOP_TIMEOUT_S):
        lab.log(f"    apt-cacher-ng: pid {killed} did not stop in {ACNG_STOP_TIMEOUT_S} s, SIGKILL")
    processes.wait_reaped([pid])
    (lab.acng_dir / "pid").unlink(missing_ok=True)
