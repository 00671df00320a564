"""Switching the broker's statistics emission for a step (the `broker_stats_s` instrument,
offload_lab/plan/instruments.py): /etc/rabbitmq/conf.d/90-offload-sweep.conf on every broker node
(RabbitMQ reads conf.d after rabbitmq.conf), a restart of each node in inventory order, then
fresh clients: the cores and gateways restart too, so that no step begins on a connection the
broker dropped. `systemctl restart` returns once the node has booted (the unit is
Type=notify); its own management API must then answer. Only done when the wanted setting
differs from the current one; `restore()` removes the file and restarts, so the broker is back
to its provisioned settings."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..hosts.lab_names import BROKER_UNIT
from ..hosts.remote import Remote

CONF_DIR = "/etc/rabbitmq/conf.d"  # RabbitMQ reads its *.conf after rabbitmq.conf
SWEEP_CONF = f"{CONF_DIR}/90-offload-sweep.conf"
MAIN_CONF = "/etc/rabbitmq/rabbitmq.conf"
RABBITMQ_DEFAULT_MS = 5000  # collect_statistics_interval when no file sets it


class BrokerSettingsError(RuntimeError):
    pass


def sweep_conf(stats_interval_ms: int) -> str:
    return (
        "# written by fab sweep for the step's instruments (offload_lab/services/broker_settings.py);\n"
        "# removed when the sweep ends\n"
        f"collect_statistics_interval = {stats_interval_ms}\n"
    )


def provisioned_interval_ms(conf: str | None) -> int | None:
    """collect_statistics_interval as rabbitmq.conf sets it (RabbitMQ's default when it does
    not); None without the file."""
    if conf is None:
        return None
    for line in conf.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "collect_statistics_interval" and value.strip().isdigit():
            return int(value.strip())
    return RABBITMQ_DEFAULT_MS


class BrokerSettings:
    def __init__(
        self,
        remotes: dict[str, Remote],
        answers: Callable[[str], bool],
        restart_clients: Callable[[], None],
        start_timeout_s: float = 180,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.remotes = remotes  # broker host name -> its Remote, in inventory order
        self.answers = answers  # broker host name -> that node's management API answers
        self.restart_clients = restart_clients
        self.start_timeout_s = start_timeout_s
        self.sleep = sleep
        self.clock = clock
        self.current: int | None = None  # the interval the sweep file sets (None: provisioned)
        self.provisioned_ms: int | None = None  # read by begin() from the first node's rabbitmq.conf

    def begin(self) -> None:
        """Start from the provisioned settings: a file left by an earlier, killed sweep goes."""
        first = next(iter(self.remotes.values()))
        self.provisioned_ms = provisioned_interval_ms(first.read_text(MAIN_CONF, sudo=True))
        left = [
            n for n, r in self.remotes.items() if r.run(f"test -e {SWEEP_CONF}", check=False, sudo=True).ok
        ]
        if left:
            self.current = -1  # unknown: make apply(None) remove it and restart
            self.apply(None)
        self.current = None

    def apply(self, stats_interval_ms: int | None) -> bool:
        """Make every node emit statistics every `stats_interval_ms` (None: as provisioned);
        True if the broker (and so its clients) restarted."""
        if stats_interval_ms == self.current:
            return False
        for name, remote in self.remotes.items():
            if stats_interval_ms is None:
                remote.run(f"rm -f {SWEEP_CONF}", sudo=True)
            else:
                remote.run(f"mkdir -p {CONF_DIR}", sudo=True)
                remote.put_text(sweep_conf(stats_interval_ms), SWEEP_CONF, mode="0644", sudo=True)
            remote.run(f"systemctl restart {BROKER_UNIT}", timeout=self.start_timeout_s, sudo=True)
            self._wait_answering(name)
        self.current = stats_interval_ms
        self.restart_clients()
        return True

    def restore(self) -> bool:
        return self.apply(None)

    def effective_s(self, stats_interval_ms: int | None) -> float | None:
        """The interval a step ran with, in seconds (None: unknown)."""
        ms = self.provisioned_ms if stats_interval_ms is None else stats_interval_ms
        return None if ms is None else ms / 1000

    def _wait_answering(self, name: str) -> None:
        deadline = self.clock() + self.start_timeout_s
        while not self.answers(name):
            if self.clock() >= deadline:
                raise BrokerSettingsError(
                    f"the broker's management API did not answer within {self.start_timeout_s:g} s after "
                    f"{name}'s restart (see `journalctl -u {BROKER_UNIT}` there)"
                )
            self.sleep(1.0)
