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
from ..hosts.lab_names import CORE_ENV, GATEWAY_ENV
from ..hosts.remote import Remote, mask_secrets, parse_env_file
from ..loadgen.k6_fleet import k6_for_loadgens
from ..paths import PASSWORD_FILE, STATS_RESET_TOKEN_FILE
from ..plan.fault_spec import FaultSpec
from ..services.broker import ManagementAPI, OutcomeRecords
from ..services.broker_settings import BrokerSettings
from ..services.core import CoreSettings, CoreStats
from ..services.cpu import CpuSampler
from ..services.faults import FaultRunner
from ..services.gateway import GatewaySettings
from ..services.ledger_files import DEFAULT_LEDGER_FILE, LedgerFiles
from ..services.outcomes import OutcomeQueue
from . import preflight
from .calibration import calibrate
from .sweep import SweepServices


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
        """password None: this machine has none yet (the lab is not provisioned; preflight says so).
        Names and ports are the inventory's (lab.names)."""
        self.inv = lab
        self.password = password
        self.remotes = {h.name: Remote(h) for h in lab.all_hosts()}
        names = lab.names
        self.gateway_urls = [names.http_url(h) for h in lab.gateways]
        self.gateway_url = self.gateway_urls[0]
        # fab's own broker user: the management API's queue figures (monitoring tag) and the
        # ledger queue's messages, nothing else (roles/offload_broker: offload_broker_users.controller)
        self.mgmt = ManagementAPI(
            [names.http_url(h) for h in lab.brokers],
            names.broker.controller_user,
            password or "",
            names.broker.vhost,
        )
        core_urls = {h.name: names.http_url(h) for h in lab.cores}
        self.core = CoreStats(core_urls, reset_token=read_secret(STATS_RESET_TOKEN_FILE))
        self.outcomes = OutcomeRecords(self.mgmt, names.broker.outcome_queue, names.broker.dead_letter_queue)
        # k6 round-robins over every gateway (docs/design.md, "Several load generators and gateways")
        self.k6 = k6_for_loadgens(
            [self.remotes[h.name] for h in lab.loadgens], run_id, ",".join(self.gateway_urls)
        )
        hosts_urls = zip(lab.gateways, self.gateway_urls, strict=True)
        gateways = [GatewaySettings(self.remotes[h.name], url) for h, url in hosts_urls]
        self.gateway = gateways[0] if len(gateways) == 1 else EveryGateway(gateways)
        self.core_settings = CoreSettings({h.name: self.remotes[h.name] for h in lab.cores}, core_urls)
        self.cpu = CpuSampler(self.remotes)
        self.broker_settings = BrokerSettings(
            {h.name: self.remotes[h.name] for h in lab.brokers},
            lambda name: self._node_api(name).version() is not None,
            lambda: (self.core_settings.restart(), self.gateway.restart()),
        )

    def preflight(self) -> list[str]:
        """What stops a sweep, checked without load: [] when every host and service answers, else
        a headline saying what to do, then the details (offload_lab.run.preflight)."""
        return preflight.problems(self)

    def sweep_services(self) -> SweepServices:
        names = self.inv.names.broker
        return SweepServices(
            k6=self.k6,
            core=self.core,
            gateway=self.gateway,
            cpu=self.cpu,
            queue_depth=self.mgmt.queue_depth,
            host_groups={h.name: h.group for h in self.inv.all_hosts()},
            broker_names=names,
            ledgers=self.ledgers(),
            calibrate=lambda: calibrate(self.k6),
            broker_settings=self.broker_settings,
            faults=self.fault_runner,
            core_settings=self.core_settings,
            broker_facts=lambda delay_queues: self.mgmt.facts(
                [names.task_queue, names.outcome_queue, names.dead_letter_queue, *delay_queues]
            ),
            queue_depths=self.mgmt.queue_depths,
        )

    def _node_api(self, name: str) -> ManagementAPI:
        """One broker node's own management API (ManagementAPI moves on to the next node)."""
        host = next(h for h in self.inv.brokers if h.name == name)
        names = self.inv.names
        return ManagementAPI(
            names.http_url(host), names.broker.controller_user, self.password or "", names.broker.vhost
        )

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
        amqp_ports = {h.address: self.inv.names.amqp_ports[h.name] for h in self.inv.brokers}
        return FaultRunner(faults, groups, self.inv.broker.address, amqp_ports)

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
