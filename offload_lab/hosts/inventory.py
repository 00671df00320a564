"""The lab's hosts, read through Ansible's own inventory tooling (InventoryManager + VariableManager).

Groups: broker, gateway, core, loadgen, each with one or more hosts; a host's index in its group is
its order in the inventory (loadgen i runs k6's execution segment i of N). A host's address is the hostvar
`offload_private_address`, falling back to `ansible_host`, then the inventory name; ssh user is
`ansible_user` (default root), key `ansible_ssh_private_key_file` (or `ansible_private_key_file`),
port `ansible_port` (default 22), known hosts from `ansible_ssh_common_args` (offload_lab/hosts/remote.py).
The names and ports of the services (queues, vhost, ports) come from the hosts' variables too
(offload_lab/hosts/lab_names.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..paths import REPO_ROOT
from . import lab_names
from .lab_names import LabNames

GROUPS = ("broker", "gateway", "core", "loadgen")
FALLBACK_INVENTORY = "inventory/lab"


class InventoryError(ValueError):
    pass


@dataclass(frozen=True)
class InventoryHost:
    """A host as an inventory names it: how to reach it over SSH, and its private address."""

    name: str
    group: str
    address: str
    user: str = "root"
    port: int = 22
    key_file: str | None = None
    ssh_common_args: str = ""  # ansible_ssh_common_args: fab takes its UserKnownHostsFile


@dataclass(frozen=True)
class Inventory:
    """The hosts of one inventory, by group, and the names and ports their variables set."""

    source: str
    groups: dict[str, list[InventoryHost]]
    names: LabNames
    is_default: bool = False  # the one ansible.cfg names: ansible-playbook needs no -i
    is_local_lab: bool = False  # inventory/lab, written by lab/labctl

    # every host of a group, in inventory order
    @property
    def brokers(self) -> list[InventoryHost]:
        return self.groups["broker"]

    @property
    def gateways(self) -> list[InventoryHost]:
        return self.groups["gateway"]

    @property
    def cores(self) -> list[InventoryHost]:
        return self.groups["core"]

    @property
    def loadgens(self) -> list[InventoryHost]:
        return self.groups["loadgen"]

    # the first host of a group: the only one in the default layout
    @property
    def broker(self) -> InventoryHost:
        return self.brokers[0]

    @property
    def gateway(self) -> InventoryHost:
        return self.gateways[0]

    @property
    def loadgen(self) -> InventoryHost:
        return self.loadgens[0]

    @property
    def provision_command(self) -> str:
        return (
            "ansible-playbook site.yml" if self.is_default else f"ansible-playbook -i {self.source} site.yml"
        )

    def how_to_check(self, host: InventoryHost) -> str:
        """The command that shows whether a host is up."""
        if self.is_local_lab:
            return "lab/labctl status"
        port = f" -p {host.port}" if host.port != 22 else ""
        return f"ssh{port} {host.user}@{host.address}"

    def all_hosts(self) -> list[InventoryHost]:
        """Every host once (a host may sit in several groups), in group order."""
        seen: dict[str, InventoryHost] = {}
        for group in GROUPS:
            for h in self.groups.get(group, []):
                seen.setdefault(h.name, h)
        return list(seen.values())


def default_inventory(repo_root: Path = REPO_ROOT) -> str:
    """The inventory ansible.cfg names (Ansible's config manager reads it), else inventory/lab."""
    cfg = os.environ.get("ANSIBLE_CONFIG") or str(repo_root / "ansible.cfg")
    if Path(cfg).is_file():
        from ansible.config.manager import ConfigManager

        value = ConfigManager(conf_file=cfg).get_config_value("DEFAULT_HOST_LIST")
        if value:
            first = value[0] if isinstance(value, list | tuple) else str(value).split(",")[0]
            path = Path(first)
            if not path.is_absolute():
                path = Path(cfg).parent / path
            return str(path)
    return str(repo_root / FALLBACK_INVENTORY)


def load(source: str | None = None, repo_root: Path = REPO_ROOT) -> Inventory:
    """Read the four groups from an inventory (file, directory or anything Ansible accepts)."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    default = default_inventory(repo_root)
    source = source or default
    if not Path(source).exists():
        raise InventoryError(f"inventory: {source} does not exist (is the lab up? `make lab-up`)")
    lab_inventory = Path(repo_root) / FALLBACK_INVENTORY
    is_local_lab = Path(source).resolve() == lab_inventory.resolve()
    if is_local_lab and not (lab_inventory / "hosts.yml").is_file():
        # only the lab's group_vars are in git: its hosts.yml is written by `lab/labctl up`
        raise InventoryError("the lab is not up (no inventory/lab/hosts.yml): run `make lab-up`")
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[source])
    variables = VariableManager(loader=loader, inventory=inventory)

    groups: dict[str, list[InventoryHost]] = {}
    host_vars: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    problems: list[str] = []
    for group in GROUPS:
        if group not in inventory.groups:
            problems.append(f"group {group!r} is missing")
            continue
        hosts = inventory.groups[group].get_hosts()
        if not hosts:
            problems.append(f"group {group!r} has no hosts")
            continue
        groups[group] = []
        host_vars[group] = []
        for host in hosts:
            hv = variables.get_vars(host=host, include_hostvars=False)
            host_vars[group].append((host.name, hv))
            templar = Templar(loader=loader, variables=hv)

            def var(name: str, default: Any = None, hv=hv, templar=templar) -> Any:
                value = hv.get(name)
                if value is None:
                    return default
                return templar.template(value)

            address = var("offload_private_address") or var("ansible_host") or host.name
            key = var("ansible_ssh_private_key_file") or var("ansible_private_key_file")
            if key:
                key = os.path.expanduser(str(key))
                if not os.path.isabs(key):
                    key = str(Path(repo_root) / key)
            try:
                port = int(var("ansible_port", 22))
            except (TypeError, ValueError):
                problems.append(f"host {host.name}: ansible_port is not a number")
                port = 22
            groups[group].append(
                InventoryHost(
                    name=host.name,
                    group=group,
                    address=str(address),
                    user=str(var("ansible_user", "root")),
                    port=port,
                    key_file=key,
                    ssh_common_args=str(var("ansible_ssh_common_args", "")),
                )
            )
    names = lab_names.read(host_vars, problems)
    if problems:
        raise InventoryError(f"inventory {source}: " + "; ".join(problems))
    return Inventory(
        source=str(source),
        groups=groups,
        names=names,
        is_default=Path(source).resolve() == Path(default).resolve(),
        is_local_lab=is_local_lab,
    )
