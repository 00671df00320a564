"""Connections to the hosts of one inventory (SSH) and clients of their services (gateway,
core, broker management API, k6 on the loadgen), plus the settings the hosts were provisioned
with."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..hosts.inventory import Inventory
from ..hosts.remote import Remote, mask_secrets, parse_env_file
from ..loadgen.k6_fleet import k6_for_loadgens
from ..paths import PASSWORD_FILE, STATS_RESET_TOKEN_FILE
from ..plan.fault_spec import FaultSpec
from ..services.broker import DEAD_LETTER_QUEUE, OUTCOME_QUEUE, TASK_QUEUE, ManagementAPI, OutcomeRecords
from ..services.broker_settings import BrokerSettings
from ..services.core import CoreSettings, CoreStats
from ..services.cpu import CpuSampler
from ..services.faults import FaultRunner
from ..services.gateway import CORE_ENV, GATEWAY_ENV, GatewaySettings
from ..services.ledger_files import DEFAULT_LEDGER_FILE, LedgerFiles
from ..services.outcomes import OutcomeQueue
from . import preflight
from .calibration import calibrate
from .sweep import SweepServices

# fab's own broker user (roles/offload_broker: offload_broker_users.controller): the management
# API's queue figures (monitoring tag) and the ledger queue's messages, nothing else
MGMT_USER = "offload-controller"
VHOST = "offload"
GATEWAY_PORT = 8000
CORE_PORT = 8080
MGMT_PORT = 15672


class PasswordError(RuntimeError):
    pass


@dataclass(frozen=True)
class ProvisionedSettings:
    """The env files the gateway and the cores run with, as read from their hosts."""

    gateway: dict[str, str]  # secrets included: the sweep restores exactly these
    cores: dict[str, dict[str, str]]  # host name -> its env file

    def recorded(self) -> dict[str, Any]:
        """For run.json: secrets masked; one core's settings flat, several by host."""
        cores = {name: mask_secrets(env) for name, env in self.cores.items()}
        core = next(iter(cores.values())) if len(cores) == 1 else cores
        return {"gateway": mask_secrets(self.gateway), "core": core}


def read_password(path: Path = PASSWORD_FILE) -> str:
    env = os.environ.get("OFFLOAD_RABBITMQ_PASSWORD")
    if env:
        return env
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise PasswordError(
            f"RabbitMQ password: cannot read {path} ({exc.strerror}); provision first"
        ) from exc


def read_secret(path: Path) -> str | None:
    """A generated secret on the controller (.secrets/), None before the first provisioning."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class EveryGateway:
    """A step's gateway settings switched on every gateway host at once (GatewaySettings each)."""

    def __init__(self, gateways: list[GatewaySettings]):
        self.gateways = gateways

    def _each(self, fn) -> list[Any]:
        with ThreadPoolExecutor(max_workers=len(self.gateways)) as pool:
            return list(pool.map(fn, self.gateways))

    def begin(self) -> None:
        self._each(lambda g: g.begin())

    def apply(self, settings: dict[str, str]) -> bool:
        return any(self._each(lambda g: g.apply(settings)))

    def restore(self) -> bool:
        return any(self._each(lambda g: g.restore()))

    def restart(self) -> None:
        self._each(lambda g: g.restart())


class LabConnections:
    """SSH connections and service clients for the hosts of one inventory."""

    def __init__(self, lab: Inventory, run_id: str, password: str | None):
        """password None: this machine has none yet (the lab is not provisioned; preflight says so)."""
        self.inv = lab
        self.password = password
        self.remotes = {h.name: Remote(h) for h in lab.all_hosts()}
        self.gateway_urls = [f"http://{h.address}:{GATEWAY_PORT}" for h in lab.gateways]
        self.gateway_url = self.gateway_urls[0]
        self.mgmt = ManagementAPI(
            [f"http://{h.address}:{MGMT_PORT}" for h in lab.brokers], MGMT_USER, password or "", VHOST
        )
        self.core = CoreStats(
            {h.name: f"http://{h.address}:{CORE_PORT}" for h in lab.cores},
            reset_token=read_secret(STATS_RESET_TOKEN_FILE),
        )
        self.outcomes = OutcomeRecords(self.mgmt)
        # k6 round-robins over every gateway (docs/design.md, "Several load generators and gateways")
        self.k6 = k6_for_loadgens(
            [self.remotes[h.name] for h in lab.loadgens], run_id, ",".join(self.gateway_urls)
        )
        hosts_urls = zip(lab.gateways, self.gateway_urls, strict=True)
        gateways = [GatewaySettings(self.remotes[h.name], url) for h, url in hosts_urls]
        self.gateway = gateways[0] if len(gateways) == 1 else EveryGateway(gateways)
        self.core_settings = CoreSettings(
            {h.name: self.remotes[h.name] for h in lab.cores},
            {h.name: f"http://{h.address}:{CORE_PORT}" for h in lab.cores},
        )
        self.cpu = CpuSampler(self.remotes)
        self.broker_settings = BrokerSettings(
            {h.name: self.remotes[h.name] for h in lab.brokers},
            lambda name: self._node_api(name).version() is not None,
            lambda: (self.core_settings.restart(), self.gateway.restart()),
        )
        self._task_queue: str | None = None

    def preflight(self) -> list[str]:
        """What stops a sweep, checked without load: [] when every host and service answers, else
        a headline saying what to do, then the details (offload_lab.run.preflight)."""
        return preflight.problems(self)

    def sweep_services(self) -> SweepServices:
        return SweepServices(
            k6=self.k6,
            core=self.core,
            gateway=self.gateway,
            cpu=self.cpu,
            queue_depth=self.mgmt.queue_depth,
            host_groups={h.name: h.group for h in self.inv.all_hosts()},
            task_queue=self.task_queue,
            ledgers=self.ledgers(),
            calibrate=lambda: calibrate(self.k6),
            broker_settings=self.broker_settings,
            faults=self.fault_runner,
            core_settings=self.core_settings,
            broker_facts=lambda delay_queues: self.mgmt.facts(
                [self.task_queue, OUTCOME_QUEUE, DEAD_LETTER_QUEUE, *delay_queues]
            ),
            queue_depths=self.mgmt.queue_depths,
        )

    def _node_api(self, name: str) -> ManagementAPI:
        """One broker node's own management API (ManagementAPI moves on to the next node)."""
        host = next(h for h in self.inv.brokers if h.name == name)
        return ManagementAPI(f"http://{host.address}:{MGMT_PORT}", MGMT_USER, self.password or "", VHOST)

    def ledgers(self) -> dict[str, OutcomeQueue]:
        """Where each ledger mode's records are read: the cores' files and the broker's queue."""
        paths = {
            h.name: self._env_file(h.name, CORE_ENV).get("LEDGER_FILE") or DEFAULT_LEDGER_FILE
            for h in self.inv.cores
        }
        remotes = {h.name: self.remotes[h.name] for h in self.inv.cores}
        ledgers: dict[str, OutcomeQueue] = {"file": LedgerFiles(remotes, paths, self.outcomes.dead_letters)}
        if self.outcomes.exists():
            ledgers["broker"] = self.outcomes
        return ledgers

    def fault_runner(self, faults: tuple[FaultSpec, ...]) -> FaultRunner:
        """Performs a step's faults on the first host of each group, or the one a fault picks."""
        groups = {g: [self.remotes[h.name] for h in hs] for g, hs in self.inv.groups.items() if hs}
        return FaultRunner(faults, groups, self.inv.broker.address)

    @property
    def task_queue(self) -> str:
        """The queue the gateway publishes to, as provisioned (TASK_QUEUE in its env file)."""
        if self._task_queue is None:
            gateway_env = self._env_file(self.inv.gateway.name, GATEWAY_ENV)
            self._task_queue = gateway_env.get("TASK_QUEUE") or TASK_QUEUE
        return self._task_queue

    def _env_file(self, host: str, path: str) -> dict[str, str]:
        """An env file the services run with: root's (mode 0640), so read as root, like Ansible wrote it."""
        return parse_env_file(self.remotes[host].read_text(path, sudo=True))

    def settings(self) -> ProvisionedSettings:
        gateway = self._env_file(self.inv.gateway.name, GATEWAY_ENV)
        cores = {h.name: self._env_file(h.name, CORE_ENV) for h in self.inv.cores}
        return ProvisionedSettings(gateway=gateway, cores=cores)

    def hosts_with_cpus(self) -> dict[str, list[dict[str, Any]]]:
        snap = self.cpu.snapshot()
        return {
            g: [
                {
                    "name": h.name,
                    "address": h.address,
                    "cpus": (snap.get(h.name) or {}).get("cpus"),
                    "cpu_list": (snap.get(h.name) or {}).get("cpu_list"),
                }
                for h in hs
            ]
            for g, hs in self.inv.groups.items()
        }

    def close(self) -> None:
        self.cpu.close()
        for r in self.remotes.values():
            r.close()
