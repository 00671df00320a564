"""Gunicorn settings, from the environment; names and defaults are settings_table.py's
(docs/interfaces.md, "Gateway settings"). The one source of truth:
    gunicorn -c python:offload_gateway.gunicorn_conf offload_gateway.wsgi:app     (installed package)
    gunicorn -c gateway/gunicorn.conf.py offload_gateway.wsgi:app                 (from a checkout)
Imports nothing heavy: gunicorn loads it in the master, before workers fork and patch.
"""

import os

from .settings_table import DEFAULTS as _DEFAULTS


def _env_text(name: str) -> str:
    return os.environ.get(name, "").strip() or str(_DEFAULTS[name])


def _env_int(name: str) -> int:
    default = _DEFAULTS[name]
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SystemExit(f"{name}={value!r} is not an integer") from None
    if number <= 0:
        raise SystemExit(f"{name}={value!r} must be a positive integer")
    return number


bind = _env_text("GUNICORN_BIND")
worker_class = _env_text("GUNICORN_WORKER_CLASS")
workers = _env_int("GUNICORN_WORKERS")
threads = _env_int("GUNICORN_THREADS")
worker_connections = _env_int("GUNICORN_WORKER_CONNECTIONS")
timeout = _env_int("GUNICORN_TIMEOUT")
# gunicorn closes idle keep-alive connections after 2 s by default; a k6 VU (or a load
# balancer) reusing its connection right then gets a reset, counted as a failed request
keepalive = _env_int("GUNICORN_KEEPALIVE")
# gunicorn >= 25.1 otherwise creates a control socket in $XDG_RUNTIME_DIR or ~/.gunicorn
control_socket_disable = True
accesslog = None
errorlog = "-"
loglevel = _env_text("GUNICORN_LOGLEVEL")


def worker_concurrency(cfg) -> int:
    """How many requests one worker process serves at once under these settings."""
    if "gevent" in cfg.worker_class_str or "eventlet" in cfg.worker_class_str:
        return cfg.worker_connections
    return cfg.threads


def post_fork(server, worker):
    # the app sizes its producer and HTTP pools from this; read from the effective config so
    # command-line flags count too (an explicit WORKER_CONCURRENCY wins)
    os.environ.setdefault("WORKER_CONCURRENCY", str(worker_concurrency(server.cfg)))


def post_worker_init(worker):
    # runs in the worker after the app is loaded (and, for gevent, after patching)
    services = getattr(worker.wsgi, "extensions", {}).get("offload_gateway")
    if services is not None:
        services.warm_up()
