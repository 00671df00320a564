"""CPU use of each host: counters read before and after a step (its average), and second by
second over the step (docs/result-format.md, `hosts_timeline`), with the share of each second in
which some task of the host was ready to run but waited for a CPU (Linux pressure stall
information, `cpu.pressure` "some"): CPUs that are far from busy on average can still make the
requests wait, when the hosts pinned to them want them at the same moments.

Inside a container /proc/stat counts the whole machine, so there the host's own cgroup is read
(cgroup v2 `cpu.stat` usage_usec, against wall time x its CPUs); on a VM /proc/stat is the host.
For the timeline each host runs one small shell loop for the whole step, started over SSH: it
reads its counters with shell builtins and sleeps on a pipe, so that sampling spawns no process
per second on the hosts being measured."""

from __future__ import annotations

import contextlib
import shlex
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from ..hosts.remote import Remote, RemoteError


def parse_cpu(text: str) -> dict[str, Any]:
    """CPU_COMMAND's output -> {"busy": ticks, "total": ticks, "cpus": n} (ticks of one source),
    plus "cpu_list" (the CPUs the host may run on, e.g. "1" when pinned) when it was printed."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) < 2:
        raise RemoteError(f"unexpected CPU counters: {text[:200]!r}")
    pinned = {"cpu_list": lines[2].strip()} if len(lines) > 2 else {}
    try:
        cpus = int(lines[1])
        fields = lines[0].split()
        if fields[0] == "cgroup":
            usage_us, uptime_s = int(fields[1]), float(fields[2])
            return {"busy": usage_us, "total": int(uptime_s * 1e6) * cpus, "cpus": cpus, **pinned}
        if fields[0] == "cpu":
            busy, total = proc_stat_ticks(fields[1:])
            return {"busy": busy, "total": total, "cpus": cpus, **pinned}
    except (ValueError, IndexError):
        pass
    raise RemoteError(f"unexpected CPU counters: {text[:200]!r}")


def proc_stat_ticks(numbers: list[str]) -> tuple[int, int]:
    """(busy, total) ticks from the numbers of /proc/stat's `cpu` line."""
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    ticks = ([int(x) for x in numbers] + [0] * 8)[:8]
    total = sum(ticks)
    return total - ticks[3] - ticks[4], total


# sets $src: the host's own cgroup counters inside a container, else /proc/stat; and $psi: its
# CPU pressure (the cgroup's, else the machine's; unreadable where the kernel has no PSI)
COUNTER_SOURCE = (
    "src=/proc/stat; psi=/proc/pressure/cpu; if systemd-detect-virt --container --quiet 2>/dev/null; then"
    " for c in /sys/fs/cgroup/unified/cpu.stat /sys/fs/cgroup/cpu.stat;"
    ' do if [ -r "$c" ]; then src=$c; psi=${c%/cpu.stat}/cpu.pressure; break; fi; done; fi;'
)

CPU_COMMAND = (
    COUNTER_SOURCE + ' if [ "$src" != /proc/stat ]; then'
    ' echo "cgroup $(awk \'/^usage_usec/{print $2}\' "$src") $(cut -d" " -f1 /proc/uptime)";'
    " else head -1 /proc/stat; fi; nproc;"
    " awk '/^Cpus_allowed_list/{print $2}' /proc/self/status"
)


def cpu_pct(before: dict[str, int], after: dict[str, int]) -> float | None:
    total = after["total"] - before["total"]
    if total <= 0:
        return None
    return round(100.0 * (after["busy"] - before["busy"]) / total, 1)


class CpuSampler:
    """Reads CPU counters on several hosts at once (one thread per host), and runs the
    second-by-second loops of a step on connections of their own."""

    def __init__(self, remotes: dict[str, Remote]):
        self.remotes = remotes  # host name -> Remote
        self._loop_remotes: dict[str, Remote] = {}

    def timeline(self, t0_unix_s: float, limit_s: float, interval_s: float = 1.0) -> CpuTimeline:
        if not self._loop_remotes:
            self._loop_remotes = {name: r.fresh() for name, r in self.remotes.items()}
        return CpuTimeline(self._loop_remotes, t0_unix_s, limit_s, interval_s)

    def close(self) -> None:
        for r in self._loop_remotes.values():
            r.close()

    def snapshot(self) -> dict[str, dict[str, int] | None]:
        def one(remote: Remote):
            try:
                return parse_cpu(remote.run(CPU_COMMAND, timeout=15).stdout)
            except RemoteError:
                return None

        if not self.remotes:
            return {}
        with ThreadPoolExecutor(max_workers=len(self.remotes)) as pool:
            futures = {name: pool.submit(one, r) for name, r in self.remotes.items()}
            return {name: f.result() for name, f in futures.items()}


# after COUNTER_SOURCE: one line per second, "<unix time> <counter line> [<pressure line>]"
LOOP = r"""
n=$(nproc)
fifo=$(mktemp -u); mkfifo "$fifo"; exec 9<>"$fifo"; rm -f "$fifo"
echo "cpus $n"
end=$((SECONDS + LIMIT))
while [ "$SECONDS" -lt "$end" ] && [ ! -e "STOP" ]; do
  read -r line < "$src"
  wait=; [ -r "$psi" ] && read -r wait < "$psi"
  echo "$EPOCHREALTIME $line $wait"
  read -r -t INTERVAL -u 9 _ || true
done
rm -f "STOP"
"""


def loop_command(stop_file: str, limit_s: int, interval_s: float) -> str:
    script = COUNTER_SOURCE + (
        LOOP.replace("STOP", stop_file)
        .replace("LIMIT", str(int(limit_s)))
        .replace("INTERVAL", f"{interval_s:g}")
    )
    return "bash -c " + shlex.quote(script)


class Reading(NamedTuple):
    when: float  # unix time
    busy: int
    total: int  # busy and total in one unit per host
    waited_us: int | None  # PSI "some" total: microseconds some task waited for a CPU (None: unread)


def parse_readings(text: str) -> tuple[int | None, list[Reading]]:
    """The loop's output -> (cpus, readings)."""
    cpus = None
    readings = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "cpus":
            cpus = int(fields[1])
            continue
        pressure = fields.index("some") if "some" in fields else len(fields)
        fields, waited_us = fields[:pressure], _pressure_total(fields[pressure:])
        try:
            when = float(fields[0].replace(",", "."))
            if fields[1] == "usage_usec" and cpus:
                # a cgroup's CPU time against wall time on all its CPUs, both in microseconds
                busy, total = int(fields[2]), int(when * 1e6) * cpus
            elif fields[1] == "cpu":
                busy, total = proc_stat_ticks(fields[2:])
            else:
                continue
        except (ValueError, IndexError):
            continue
        readings.append(Reading(when, busy, total, waited_us))
    return cpus, readings


def _pressure_total(fields: list[str]) -> int | None:
    """`some avg10=.. avg60=.. avg300=.. total=<us>` -> the total."""
    for field in fields:
        if field.startswith("total="):
            with contextlib.suppress(ValueError):
                return int(field.removeprefix("total="))
    return None


def shares(readings: list[Reading]) -> list[tuple[float, float]]:
    """(unix time, CPU % of the host's CPUs over the interval ending then)."""
    out = []
    for a, b in zip(readings, readings[1:], strict=False):
        if b.total > a.total:
            out.append((b.when, round(100.0 * (b.busy - a.busy) / (b.total - a.total), 1)))
    return out


def waits(readings: list[Reading]) -> list[tuple[float, float]]:
    """(unix time, % of the interval ending then in which some task of the host waited for a CPU)."""
    out = []
    for a, b in zip(readings, readings[1:], strict=False):
        if a.waited_us is not None and b.waited_us is not None and b.when > a.when:
            pct = 100.0 * (b.waited_us - a.waited_us) / ((b.when - a.when) * 1e6)
            out.append((b.when, round(min(max(pct, 0.0), 100.0), 1)))
    return out


def merge(per_host: dict[str, list[tuple[float, float]]], t0_unix_s: float) -> list[list[Any]]:
    """One sample per second since t0: [t, {host: CPU %}], hosts read in that second."""
    seconds: dict[int, dict[str, float]] = {}
    for host, points in per_host.items():
        for when, pct in points:
            seconds.setdefault(round(when - t0_unix_s), {})[host] = pct
    return [[float(t), hosts] for t, hosts in sorted(seconds.items())]


class CpuTimeline:
    """The loops of one step: `start()` on every host, `stop()` returns `hosts_timeline`."""

    def __init__(self, remotes: dict[str, Remote], t0_unix_s: float, limit_s: float, interval_s: float = 1.0):
        self.remotes = remotes  # host name -> a Remote of its own (its loop blocks it)
        self.t0_unix_s = t0_unix_s
        self.limit_s = limit_s
        self.interval_s = interval_s
        self.stop_file = f"/tmp/offload-cpu-{uuid.uuid4().hex[:12]}.stop"
        self.output: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        command = loop_command(self.stop_file, int(self.limit_s), self.interval_s)
        for name, remote in self.remotes.items():
            thread = threading.Thread(target=self._run, args=(name, remote, command), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self, name: str, remote: Remote, command: str) -> None:
        try:
            self.output[name] = remote.run(command, check=False, timeout=self.limit_s + 30).stdout
        except RemoteError as exc:
            self.errors[name] = str(exc)

    def stop(self) -> dict[str, Any]:
        for remote in self.remotes.values():
            with contextlib.suppress(RemoteError):  # its loop then ends by itself at the limit
                remote.run(f"touch {self.stop_file}", check=False, timeout=15)
        for thread in self._threads:
            thread.join(timeout=self.interval_s + 20)
        readings = {name: parse_readings(text)[1] for name, text in self.output.items()}
        use = {name: shares(r) for name, r in readings.items()}
        out: dict[str, Any] = {"interval_s": self.interval_s, "samples": merge(use, self.t0_unix_s)}
        waited = {name: points for name, r in readings.items() if (points := waits(r))}
        if waited:
            out["cpu_wait_samples"] = merge(waited, self.t0_unix_s)
        if self.errors:
            out["errors"] = dict(self.errors)
        return out
