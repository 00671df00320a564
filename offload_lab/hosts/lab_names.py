"""The names and ports a lab's inventory decides and fab follows (the broker's vhost, queues and
fab's user on it, the ports of the management API, AMQP, the gateways and the cores), and the
role settings fab cannot follow, which preflight names.

Each is read as Ansible resolves it for a host of the group whose role uses it: the inventory's
host and group variables over the roles' defaults (roles/*/defaults/main.yml, the one place the
defaults are written), templated by Ansible, with playbook_dir the repository as site.yml has it.
docs/interfaces.md, "What fab reads from the inventory", lists them."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from ..paths import PASSWORD_FILE, REPO_ROOT, STATS_RESET_TOKEN_FILE

# what fab drives on the hosts and cannot follow when an inventory renames it (preflight says so)
GATEWAY_UNIT, CORE_UNIT, BROKER_UNIT = "offload-gateway", "offload-core", "rabbitmq-server"
GATEWAY_ENV = "/etc/offload/gateway.env"
CORE_ENV = "/etc/offload/core.env"


class NamedHost(Protocol):
    """What a URL needs of an inventory's host (offload_lab.hosts.inventory.InventoryHost)."""

    name: str
    group: str
    address: str


ROLES_DIR = REPO_ROOT / "roles"

# a BrokerNames field -> the (group, variable) it is read from on every host of the group: one
# value for the whole lab, which fab cannot follow when the hosts disagree
BROKER_NAME_SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "vhost": (("broker", "rabbitmq_vhost"),),
    "controller_user": (("broker", "rabbitmq_users.controller.name"),),
    # the queue the cores declare and consume, and the one the gateways publish to
    "task_queue": (("core", "core_go_task_queue"), ("gateway", "gateway_task_queue")),
    "dead_letter_queue": (("core", "core_go_dead_letter_queue"),),
    "outcome_queue": (("core", "core_go_ledger_queue"),),
}


def _port(value: Any) -> int | None:
    try:
        port = int(str(value))
    except ValueError:
        return None
    return port if 1 <= port <= 65535 else None


def _bind_port(value: Any) -> int | None:
    """gunicorn's bind, host:port (a unix socket has none)."""
    _, colon, port = str(value).rpartition(":")
    return _port(port) if colon else None


# each host's own: group -> (variable, its port in the value)
HTTP_PORT_SOURCES: dict[str, tuple[str, Callable[[Any], int | None]]] = {
    "broker": ("rabbitmq_management_port", _port),
    "gateway": ("gateway_bind", _bind_port),
    "core": ("core_go_http_port", _port),
}
AMQP_PORT_SOURCE = "rabbitmq_amqp_port"


@dataclass(frozen=True)
class Fixed:
    """A role setting fab cannot follow: only `supported` works."""

    group: str
    variable: str
    supported: str
    why: str  # what fab does with it


FIXED = (
    Fixed(
        "gateway",
        "gateway_config_dir",
        posixpath.dirname(GATEWAY_ENV),
        "where it reads gateway.env and writes gateway.sweep.env",
    ),
    Fixed(
        "core",
        "core_go_config_dir",
        posixpath.dirname(CORE_ENV),
        "where it reads core.env and writes core.sweep.env",
    ),
    Fixed(
        "gateway",
        "gateway_service_name",
        f"{GATEWAY_UNIT}.service",
        "the unit it restarts and its faults kill",
    ),
    Fixed(
        "core",
        "core_go_service_name",
        f"{CORE_UNIT}.service",
        "the unit it restarts and its faults kill",
    ),
    Fixed(
        "broker",
        "rabbitmq_users.controller.password_file",
        str(PASSWORD_FILE),
        "where it reads its broker password",
    ),
    Fixed(
        "core",
        "core_go_stats_reset_token_file",
        str(STATS_RESET_TOKEN_FILE),
        "where it reads the core's stats reset token",
    ),
)


@dataclass(frozen=True)
class BrokerNames:
    """The broker's names fab uses, one for the whole lab."""

    vhost: str
    controller_user: str  # fab's own user on the management API
    task_queue: str
    dead_letter_queue: str
    outcome_queue: str  # the core's outcome records: the ledger on the broker


@dataclass(frozen=True)
class LabNames:
    broker: BrokerNames
    # group -> host name -> the port fab reaches that host's service on over HTTP: a broker's
    # management API, a gateway, a core
    http_ports: dict[str, dict[str, int]]
    amqp_ports: dict[str, int]  # broker host name -> its AMQP port
    unfollowed: tuple[str, ...] = ()  # what the inventory sets that fab cannot follow (preflight)

    def http_url(self, host: NamedHost) -> str:
        return f"http://{host.address}:{self.http_ports[host.group][host.name]}"


@cache
def role_defaults() -> dict[str, Any]:
    """Every role's defaults in one mapping (their names are prefixed by role: no overlap)."""
    from ansible.parsing.dataloader import DataLoader

    loader = DataLoader()
    defaults: dict[str, Any] = {}
    for path in sorted(ROLES_DIR.glob("*/defaults/main.yml")):
        defaults.update(loader.load_from_file(str(path), trusted_as_template=True) or {})
    return defaults


Resolve = Callable[[str], Any]


def _resolver(host_vars: Mapping[str, Any]) -> Resolve:
    """A variable (or an expression such as `a.b.c`) as Ansible resolves it for one host."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    variables = {**role_defaults(), **host_vars, "playbook_dir": str(REPO_ROOT)}
    return Templar(loader=DataLoader(), variables=variables).resolve_variable_expression


@cache
def role_broker_names() -> BrokerNames:
    """The broker's names when an inventory sets none: the roles' defaults."""
    resolve = _resolver({})
    return BrokerNames(
        **{field: str(resolve(sources[0][1])) for field, sources in BROKER_NAME_SOURCES.items()}
    )


class _HostValues:
    """The variables of each host, resolved once; one that does not resolve is a problem."""

    def __init__(self, hosts: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]], problems: list[str]):
        self.hosts = {group: [name for name, _ in members] for group, members in hosts.items()}
        self.resolvers = {
            name: _resolver(variables) for members in hosts.values() for name, variables in members
        }
        self.problems = problems
        self.values: dict[tuple[str, str], Any] = {}
        self.failed: set[tuple[str, str]] = set()

    def of(self, group: str, variable: str) -> list[tuple[str, Any]]:
        """(host, value) for every host of the group that resolves it, in inventory order."""
        out = []
        for host in self.hosts.get(group, []):  # a missing group is the inventory's problem
            key = (host, variable)
            if key not in self.values and key not in self.failed:
                try:
                    self.values[key] = self.resolvers[host](variable)
                except Exception as exc:  # Ansible's: an undefined variable, a template error
                    self.failed.add(key)
                    self.problems.append(f"host {host}: {variable}: {exc}")
            if key in self.values:
                out.append((host, self.values[key]))
        return out


def _hosts_by_value(pairs: Sequence[tuple[str, Any]]) -> dict[str, list[str]]:
    by_value: dict[str, list[str]] = {}
    for host, value in pairs:
        by_value.setdefault(str(value), []).append(host)
    return by_value


def _broker_name(field: str, values: _HostValues, unfollowed: list[str]) -> str:
    """The one value of the lab; hosts that disagree are named (fab reads the first one's)."""
    settings = [
        (variable, _hosts_by_value(values.of(group, variable)))
        for group, variable in BROKER_NAME_SOURCES[field]
    ]
    found = [(variable, value, hosts) for variable, by_value in settings for value, hosts in by_value.items()]
    if len({value for _, value, _ in found}) > 1:
        unfollowed.append(
            f"the {field.replace('_', ' ')} differs between hosts, and fab reads one for the whole lab: "
            + "; ".join(f"{variable} is {value!r} on {', '.join(hosts)}" for variable, value, hosts in found)
        )
    return found[0][1] if found else ""


def _ports(
    values: _HostValues, group: str, variable: str, port_of: Callable[[Any], int | None], problems: list[str]
) -> dict[str, int]:
    ports = {}
    for host, value in values.of(group, variable):
        port = port_of(value)
        if port is None:
            problems.append(
                f"host {host}: {variable} is {value!r}, which gives fab no TCP port (1..65535) to reach"
            )
        ports[host] = port or 0
    return ports


def _unsupported(fixed: Fixed, values: _HostValues) -> list[str]:
    return [
        f"{fixed.variable} is {value!r} on {', '.join(hosts)}: "
        f"fab supports only {fixed.supported!r} ({fixed.why})"
        for value, hosts in _hosts_by_value(values.of(fixed.group, fixed.variable)).items()
        if posixpath.normpath(value) != posixpath.normpath(fixed.supported)
    ]


def read(hosts: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]], problems: list[str]) -> LabNames:
    """The names of a lab from its hosts' inventory variables (group -> [(host name, variables)] in
    inventory order). A variable that does not resolve, or a port that is no port, is appended to
    `problems`; what fab cannot follow goes into the record's `unfollowed`."""
    values = _HostValues(hosts, problems)
    unfollowed: list[str] = []
    broker = BrokerNames(**{field: _broker_name(field, values, unfollowed) for field in BROKER_NAME_SOURCES})
    http_ports = {
        group: _ports(values, group, variable, port_of, problems)
        for group, (variable, port_of) in HTTP_PORT_SOURCES.items()
    }
    amqp_ports = _ports(values, "broker", AMQP_PORT_SOURCE, _port, problems)
    for fixed in FIXED:
        unfollowed.extend(_unsupported(fixed, values))
    return LabNames(broker, http_ports, amqp_ports, tuple(unfollowed))
