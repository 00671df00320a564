"""The broker's users and topology names as roles/offload_broker/defaults/main.yml makes them,
rendered by Ansible's own templating, so that tests check the role's values and not a copy."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ROLE_DEFAULTS = REPO / "roles" / "offload_broker" / "defaults" / "main.yml"
CORE_ROLE_DEFAULTS = REPO / "roles" / "core_go" / "defaults" / "main.yml"
PARTS = ("gateway", "core", "controller")


@dataclass(frozen=True)
class BrokerUser:
    part: str  # gateway, core or controller
    name: str
    password_file: Path
    tags: str
    configure: str
    write: str
    read: str

    @property
    def permissions(self) -> dict[str, str]:
        """As the management API takes and gives them."""
        return {"configure": self.configure, "write": self.write, "read": self.read}


@dataclass(frozen=True)
class Topology:
    vhost: str
    task_queue: str
    dead_letter_exchange: str
    dead_letter_queue: str
    ledger_queue: str


def render(name: str, **overrides: Any) -> Any:
    """One variable of the role's defaults, templated as Ansible templates a role's defaults
    (trusted templates, Ansible's filters); `overrides` stand for extra vars, e.g. another
    playbook_dir. Lookups are not called unless the variable uses them."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    loader = DataLoader()
    defaults = loader.load_from_file(str(ROLE_DEFAULTS), trusted_as_template=True)
    variables = {**defaults, "playbook_dir": str(REPO / "playbooks"), **overrides}
    return Templar(loader=loader, variables=variables).template(defaults[name])


@cache
def role_users() -> dict[str, BrokerUser]:
    """The users by part, their password files where playbooks/build.yml makes them."""
    users = render("offload_broker_users")
    assert set(users) == set(PARTS), users
    return {
        part: BrokerUser(
            part=part,
            name=spec["name"],
            password_file=Path(spec["password_file"]),
            tags=spec["tags"],
            configure=spec["configure"],
            write=spec["write"],
            read=spec["read"],
        )
        for part, spec in users.items()
    }


@cache
def role_topology() -> Topology:
    return Topology(
        vhost=render("offload_broker_vhost"),
        task_queue=render("offload_broker_task_queue"),
        dead_letter_exchange=render("offload_broker_dead_letter_exchange"),
        dead_letter_queue=render("offload_broker_dead_letter_queue"),
        ledger_queue=render("offload_broker_ledger_queue"),
    )


@cache
def role_retries() -> tuple[tuple[int, ...], int]:
    """The core_go role's RETRY_DELAYS_MS and RETRY_QUEUE_MAX_LENGTH (plain values): the delay
    queues a provisioned core declares."""
    import yaml

    defaults = yaml.safe_load(CORE_ROLE_DEFAULTS.read_text())
    return tuple(defaults["core_go_retry_delays_ms"]), int(defaults["core_go_retry_queue_max_length"])
