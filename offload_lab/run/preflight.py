"""What `fab check --preflight` and `fab sweep` check before any load, and how they say it.

An inventory that sets what fab cannot follow (offload_lab/hosts/lab_names.py: a service's directory,
unit or secret file other than fab's, hosts that disagree on a queue's name) is named first,
each setting with its value and what fab supports; nothing is connected to. A host that does not
answer SSH is named with its address and the command that shows why (and nothing else is tried:
every other check would fail too). A lab that answers but lacks what provisioning puts in place
(the RabbitMQ password on this machine, the env files on the hosts, k6, services that answer,
the queues by the inventory's names) gets one headline with the command that provisions it, then
what is missing, one line each."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from ..hosts.inventory import Inventory
from ..hosts.lab_names import CORE_ENV, GATEWAY_ENV
from ..hosts.remote import Remote, RemoteError
from ..paths import PASSWORD_FILE, REPO_ROOT
from ..services.broker import BrokerError, ManagementAPI
from ..services.core import CoreError, CoreStats
from ..services.gateway import http_ok

SSH_CHECK_TIMEOUT_S = 20  # the command; connecting has its own bound (Remote's connect_timeout)


class LabConnectionsLike(Protocol):
    """What preflight reads of offload_lab.run.connections.LabConnections, which calls it."""

    inv: Inventory
    remotes: dict[str, Remote]
    password: str | None  # None: this machine has none yet
    gateway_urls: list[str]
    k6: Any  # RemoteK6 or K6Fleet: version(), and for several loadgens missing_k6()
    core: CoreStats
    mgmt: ManagementAPI

    @property
    def task_queue(self) -> str: ...


def not_provisioned(provision_command: str) -> str:
    return f"the lab is up but not provisioned: run `{provision_command}`"


def problems(lab: LabConnectionsLike) -> list[str]:
    """[] when a sweep can start; else a headline and, for provisioning, what is missing."""
    if lab.inv.names.unfollowed:
        return [unfollowed_headline(lab.inv.source), *lab.inv.names.unfollowed]
    unreachable = unreachable_hosts(lab)
    if unreachable:
        return unreachable
    no_sudo = hosts_without_sudo(lab)
    if no_sudo:
        return no_sudo
    missing = missing_provisioning(lab)
    if missing:
        return [not_provisioned(lab.inv.provision_command), *missing]
    return []


def unfollowed_headline(source: str) -> str:
    return (
        f"the inventory {source} sets what fab cannot follow: change these settings "
        '(docs/interfaces.md, "What fab reads from the inventory")'
    )


def unreachable_hosts(lab: LabConnectionsLike) -> list[str]:
    """One line per way of failing: `lab-core (10.77.77.13) does not answer SSH (timed out):
    check with `lab/labctl status``. Every host is tried at once, so this takes one timeout."""

    def failure(name: str) -> str | None:
        try:
            lab.remotes[name].run("true", timeout=SSH_CHECK_TIMEOUT_S)
        except RemoteError as exc:
            return ssh_failure(exc)
        return None

    with ThreadPoolExecutor(max_workers=len(lab.remotes)) as pool:
        failures = dict(zip(lab.remotes, pool.map(failure, lab.remotes), strict=True))
    grouped: dict[tuple[str, str], list[str]] = {}
    for host in lab.inv.all_hosts():
        reason = failures.get(host.name)
        if reason is not None:
            grouped.setdefault((reason, lab.inv.how_to_check(host)), []).append(
                f"{host.name} ({host.address})"
            )
    return [
        f"{', '.join(hosts)} {'does' if len(hosts) == 1 else 'do'} not answer SSH ({reason}): "
        f"check with `{command}`"
        for (reason, command), hosts in grouped.items()
    ]


def hosts_without_sudo(lab: LabConnectionsLike) -> list[str]:
    """fab runs as root where Ansible uses become (the gateway's settings file and restart, the
    env files, faults): a login without passwordless sudo is named, with sudo's own words."""
    out = []
    for host in lab.inv.all_hosts():
        try:
            lab.remotes[host.name].run("true", timeout=SSH_CHECK_TIMEOUT_S, sudo=True)
        except RemoteError as exc:
            out.append(f"{exc} (give {host.user or 'the login user'} passwordless sudo, as for Ansible)")
    return out


def ssh_failure(exc: BaseException) -> str:
    """Why SSH failed, in a few words: 'timed out', 'connection refused', 'authentication failed'."""
    cause = exc.__cause__ or exc
    wrapped = getattr(cause, "errors", None)  # paramiko's NoValidConnectionsError: one per address
    if isinstance(wrapped, dict) and wrapped:
        cause = next(iter(wrapped.values()))
    if isinstance(cause, TimeoutError):
        return "timed out"
    if type(cause).__name__ == "AuthenticationException" or "Authentication failed" in str(cause):
        return "authentication failed"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    return str(cause) or type(cause).__name__


def missing_provisioning(lab: LabConnectionsLike) -> list[str]:
    missing = []
    if lab.password is None:
        missing.append(f"no RabbitMQ password: {PASSWORD_FILE.relative_to(REPO_ROOT)} does not exist")
    env_files = [(h, GATEWAY_ENV) for h in lab.inv.gateways] + [(core, CORE_ENV) for core in lab.inv.cores]
    for host, path in env_files:
        # /etc/offload is world-readable (0755), its files are not: no sudo needed to see them
        if not lab.remotes[host.name].run(f"test -e {path}", check=False, timeout=SSH_CHECK_TIMEOUT_S).ok:
            missing.append(f"{host.name}: no {path}")
    if not lab.k6.version():
        missing_k6 = getattr(lab.k6, "missing_k6", None)  # several loadgens: which of them
        without = (missing_k6() if missing_k6 else None) or [lab.inv.loadgen.name]
        missing.extend(f"{name}: no k6 (`k6 version` failed)" for name in without)
    for url in lab.gateway_urls:
        if not http_ok(f"{url}/healthz", timeout=5):
            missing.append(f"gateway: {url}/healthz does not answer")
    try:
        lab.core.read()
    except CoreError as exc:
        missing.append(f"core: {exc}")
    if lab.password is not None:
        names = lab.inv.names.broker
        for queue in (names.task_queue, names.dead_letter_queue):
            try:
                lab.mgmt.queue_depth(queue)
            except BrokerError as exc:
                missing.append(f"broker management API, queue {queue!r} in vhost {names.vhost!r}: {exc}")
                break
    return missing
