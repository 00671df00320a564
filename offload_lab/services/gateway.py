"""Switching the gateway's settings for a step: /etc/offload/gateway.sweep.env + a restart.

Only done when the wanted settings differ from the current ones; `restore()` removes the file and
restarts so the host is back to its provisioned settings (docs/interfaces.md). The file and the
unit are root's: every command here runs as root (sudo for a login that is not root)."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

from ..hosts.lab_names import GATEWAY_UNIT
from ..hosts.remote import Remote, format_env_file

SWEEP_ENV = "/etc/offload/gateway.sweep.env"


class GatewayError(RuntimeError):
    pass


def http_ok(url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except Exception:
        return False


class GatewaySettings:
    def __init__(
        self,
        remote: Remote,
        base_url: str,
        health_timeout_s: float = 60,
        healthy: Callable[[str], bool] = http_ok,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.remote = remote
        self.base_url = base_url.rstrip("/")
        self.health_timeout_s = health_timeout_s
        self.healthy = healthy
        self.sleep = sleep
        self.current: dict[str, str] = {}  # what the sweep file holds ({} = provisioned settings)

    def begin(self) -> None:
        """Start from the provisioned settings: a file left by an earlier, killed sweep goes."""
        r = self.remote.run(f"test -e {SWEEP_ENV}", check=False, sudo=True)
        if r.ok:
            self.remote.run(f"rm -f {SWEEP_ENV}", sudo=True)
            self._restart()
        self.current = {}

    def apply(self, settings: dict[str, str]) -> bool:
        """Make the gateway run with `settings` on top of its provisioned ones; True if it restarted."""
        settings = dict(settings)
        if settings == self.current:
            return False
        if settings:
            self.remote.put_text(format_env_file(settings), SWEEP_ENV, mode="0644", sudo=True)
        else:
            self.remote.run(f"rm -f {SWEEP_ENV}", sudo=True)
        self.current = settings
        self._restart()
        return True

    def restore(self) -> bool:
        return self.apply({})

    def restart(self) -> None:
        """Restart with the current settings (fresh broker connections after a broker restart)."""
        self._restart()

    def _restart(self) -> None:
        self.remote.run(f"systemctl restart {GATEWAY_UNIT}", timeout=120, sudo=True)
        self.wait_healthy()

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.health_timeout_s
        while True:
            if self.healthy(f"{self.base_url}/healthz"):
                return
            if time.monotonic() >= deadline:
                raise GatewayError(
                    f"gateway {self.base_url}/healthz did not answer within {self.health_timeout_s} s after "
                    f"a restart (see `journalctl -u {GATEWAY_UNIT}` on the gateway host)"
                )
            self.sleep(0.2)
