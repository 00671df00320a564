"""Builds the Flask app: settings, per-process clients, routes, JSON errors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from .core_client import CoreClient
from .per_process import PerProcess
from .publishers import Publisher, create_publisher
from .routes import routes
from .settings import Settings


@dataclass
class Services:
    settings: Settings
    publisher: PerProcess[Publisher]
    core: PerProcess[CoreClient]

    def warm_up(self) -> None:
        """Build this process's clients and connect before serving (gunicorn's post_worker_init),
        so the first requests do not pay for imports and connection setup."""
        self.core.get()
        self.publisher.get().warm_up()

    def close(self) -> None:
        """Close this process's clients (tests)."""
        for holder in (self.publisher, self.core):
            client = holder.peek()
            if client is not None:
                client.close()


def build_app(config: Settings | Mapping[str, str] | None = None) -> Flask:
    settings = _settings(config)
    app = Flask("gateway")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["offload_gateway"] = Services(
        settings=settings,
        publisher=PerProcess(lambda: create_publisher(settings)),
        core=PerProcess(
            lambda: CoreClient(
                settings.core_url,
                timeout_s=settings.core_timeout_s,
                connect_timeout_s=settings.core_connect_timeout_s,
                pool_size=settings.worker_concurrency,
            )
        ),
    )
    app.register_blueprint(routes)
    app.register_error_handler(HTTPException, _http_error_as_json)
    app.logger.info("gateway settings: %s", settings.public())
    return app


def _settings(config: Settings | Mapping[str, str] | None) -> Settings:
    if isinstance(config, Settings):
        return config
    environ = dict(os.environ)
    environ.update(config or {})
    return Settings.from_env(environ)


def _http_error_as_json(error: HTTPException):
    reason = {
        404: "not found",
        405: "method not allowed",
        413: "request body too large",
    }.get(error.code or 500, error.description or error.name)
    response = jsonify(error=reason)
    response.status_code = error.code or 500
    if error.code == 405:
        response.headers["Allow"] = ", ".join(getattr(error, "valid_methods", None) or [])
    return response
