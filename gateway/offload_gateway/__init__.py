"""offload-lab's gateway: a Flask app that calls the core (/sync) or queues a task (/async)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from .settings import Settings


def create_app(config: Settings | Mapping[str, str] | None = None) -> Flask:
    """The WSGI app. `config` is a Settings, or env-style overrides (e.g. {"PUBLISHER": ...})
    layered over os.environ; by default the settings come from the environment alone."""
    # imported here, not at module level: gunicorn imports this package (for gunicorn_conf)
    # in the master before forking, and the gevent worker must patch sockets before Flask,
    # requests and the AMQP clients are imported
    from .app import build_app

    return build_app(config)
