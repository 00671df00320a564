"""What a step records of the broker it ran on: its version and each queue's settings, read from
the broker itself (the management API), so that a result says which RabbitMQ and which queues it
measured. RabbitMQ 3.10 and 4.0 differ exactly there (docs/brokers.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# RabbitMQ 4 gives quorum queues a delivery limit of 20 unless one is set; 3.x has none.
QUORUM_DEFAULT_DELIVERY_LIMIT_4 = 20


def major_version(version: str | None) -> int | None:
    """'4.0.5' -> 4; None when the broker did not say."""
    try:
        return int(str(version).split(".", 1)[0])
    except ValueError:
        return None


def classic_queue_version(queue: dict[str, Any], major: int | None) -> int | None:
    """The classic queue's storage version: 4.x names it (storage_version, and v2 is the only one
    there); 3.x shows it in backing_queue_status once statistics have been emitted."""
    if isinstance(queue.get("storage_version"), int):
        return queue["storage_version"]
    status = queue.get("backing_queue_status")
    if isinstance(status, dict) and isinstance(status.get("version"), int):
        return status["version"]
    arguments = queue.get("arguments") or {}
    if isinstance(arguments.get("x-queue-version"), int):
        return arguments["x-queue-version"]
    return 2 if major is not None and major >= 4 else None


def delivery_limit(queue: dict[str, Any], major: int | None) -> int | None:
    """A quorum queue's delivery limit: its argument, else its policy's, else the broker's default
    (20 on 4.x); None: no limit (3.x's default, or -1 on 4.x)."""
    arguments = queue.get("arguments") or {}
    policy = queue.get("effective_policy_definition") or {}
    limit = arguments.get("x-delivery-limit", policy.get("delivery-limit"))
    if limit is None:
        return QUORUM_DEFAULT_DELIVERY_LIMIT_4 if major is not None and major >= 4 else None
    return None if int(limit) < 0 else int(limit)


def queue_facts(queue: dict[str, Any], major: int | None) -> dict[str, Any]:
    """One queue's settings from its management-API record."""
    kind = queue.get("type") or "classic"
    facts: dict[str, Any] = {
        "type": kind,
        "durable": queue.get("durable"),
        "arguments": queue.get("arguments") or {},
        "policy": queue.get("policy") or None,
    }
    if kind == "classic":
        facts["classic_version"] = classic_queue_version(queue, major)
    elif kind == "quorum":
        facts["delivery_limit"] = delivery_limit(queue, major)
    return facts


def broker_facts(get: Callable[[str], Any], queue_paths: dict[str, str]) -> dict[str, Any]:
    """The broker's version and its queues' settings; `get` is the management API's GET,
    queue_paths maps a queue name to its API path. A queue that cannot be read says why."""
    overview = get("/api/overview") or {}
    version = overview.get("rabbitmq_version")
    major = major_version(version)
    queues: dict[str, Any] = {}
    for name, path in queue_paths.items():
        try:
            queues[name] = queue_facts(get(path) or {}, major)
        except Exception as exc:  # noqa: BLE001 - the step still records what it could read
            queues[name] = {"error": str(exc)}
    return {
        "rabbitmq_version": version,
        "erlang_version": overview.get("erlang_version"),
        "queues": queues,
    }
