"""The gateway's settings, in one table: every environment variable the app (settings.py) and its
gunicorn config (gunicorn_conf.py) read, with its type, allowed values, default, a one-line doc,
whether a sweep may switch it and whether the gateway role provisions it.

Derived from this table: settings.py's defaults and PUBLISHER_NAMES, gunicorn_conf.py's
defaults, offload_lab/plan/gateway_spec.py (the settings a sweep may switch, their defaults and
bounds). Checked against it (tests/sweep/test_gateway_settings_table.py): the gateway role's
gateway.env template, defaults and argument_specs, docs/interfaces.md ("Gateway settings"), and
the names the gateway's code reads from the environment.

Plain data, standard library only: gunicorn loads gunicorn_conf (which imports this) in the
master, before the workers fork and gevent patches.
"""

from __future__ import annotations

from dataclasses import dataclass

# type -> what a value is; every setting is read from a string, blank counts as unset
TYPES = {
    "url": "a URL with a host",
    "str": "a non-empty string",
    "choice": "one of `choices`",
    "flag": "1/0 (also true/false, yes/no, on/off)",
    "seconds": "a positive number of seconds",
    "int": "a positive integer",
}


@dataclass(frozen=True)
class Setting:
    name: str  # the environment variable
    type: str  # a key of TYPES
    default: str | int | float | bool | None  # typed; None: required, no default
    doc: str  # one line
    choices: tuple[str, ...] = ()  # type "choice" only
    # inclusive bounds of a number a sweep may set; the gateway itself takes any positive value
    range: tuple[float, float] | None = None
    sweep: bool = False  # a sweep spec may switch it (per sweep or series, gateway.sweep.env)
    provisioned: bool = False  # the gateway role writes it into /etc/offload/gateway.env

    @property
    def env_default(self) -> str | None:
        """The default as written in an env file ("1" for True and for 1.0)."""
        return None if self.default is None else env_text(self.default)


def env_text(value: str | int | float | bool) -> str:
    """A value as an env file holds it: flags as 1/0, whole numbers without a fraction."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


SETTINGS: tuple[Setting, ...] = (
    # the app (settings.py)
    Setting(
        "AMQP_URL",
        "url",
        None,
        "The broker /async publishes to, amqp:// or amqps:// (holds the password); several "
        "separated by `;` are tried in order, the next on a lost connection.",
        provisioned=True,
    ),
    Setting(
        "CORE_URL",
        "url",
        "http://127.0.0.1:8080",
        "The core /sync calls (POST CORE_URL/work), http:// or https://.",
        provisioned=True,
    ),
    Setting(
        "PUBLISHER",
        "choice",
        "pipelined",
        "How /async publishes (gateway/offload_gateway/publishers/).",
        choices=(
            "pipelined",
            "kombu_pool",
            "pika_per_request",
            "pika_shared",
            "celery",
            "celery_default_pool",
            "dramatiq",
        ),
        sweep=True,
        provisioned=True,
    ),
    Setting(
        "PUBLISH_CONFIRM",
        "flag",
        True,
        "Wait for the broker's publisher confirm before answering 202.",
        sweep=True,
        provisioned=True,
    ),
    Setting(
        "PUBLISH_TIMEOUT_S",
        "seconds",
        1.0,
        "Bound on one publish and its confirm; past it /async answers 503.",
        range=(0.01, 60),
        sweep=True,
        provisioned=True,
    ),
    Setting("TASK_QUEUE", "str", "tasks", "The queue tasks are published to.", provisioned=True),
    Setting(
        "CORE_TIMEOUT_S",
        "seconds",
        65.0,
        "Bound on the core's answer to /sync (the largest work_ms, 60 s, plus slack); then 504.",
    ),
    Setting(
        "CORE_CONNECT_TIMEOUT_S",
        "seconds",
        2.0,
        "Bound on connecting to the core (at most CORE_TIMEOUT_S).",
    ),
    Setting("MAX_BODY_BYTES", "int", 65536, "Largest request body; a larger one gets 413."),
    Setting(
        "BODY_READ_TIMEOUT_S",
        "seconds",
        5.0,
        "Longest wait for more of a request body; then 408 and the connection is closed.",
    ),
    Setting(
        "WORKER_CONCURRENCY",
        "int",
        1000,
        "Requests one process serves at once; sizes the producer pool and the HTTP pool to the "
        "core. Set by the gunicorn config after fork (threads, or worker connections for gevent).",
    ),
    # gunicorn (gunicorn_conf.py)
    Setting(
        "GUNICORN_BIND",
        "str",
        "0.0.0.0:8000",
        "Address gunicorn listens on, host:port.",
        provisioned=True,
    ),
    Setting(
        "GUNICORN_WORKER_CLASS",
        "choice",
        "gevent",
        "gunicorn's worker class.",
        choices=("gevent", "gthread", "sync"),
        sweep=True,
        provisioned=True,
    ),
    Setting(
        "GUNICORN_WORKERS",
        "int",
        2,
        "Worker processes.",
        range=(1, 64),
        sweep=True,
        provisioned=True,
    ),
    Setting(
        "GUNICORN_THREADS",
        "int",
        1,
        "Threads per worker (gthread).",
        range=(1, 1024),
        sweep=True,
        provisioned=True,
    ),
    Setting(
        "GUNICORN_WORKER_CONNECTIONS",
        "int",
        1000,
        "Concurrent connections per worker (gevent).",
        range=(1, 100000),
        sweep=True,
        provisioned=True,
    ),
    Setting(
        "GUNICORN_TIMEOUT",
        "int",
        30,
        "Seconds a worker may be silent before the master restarts it.",
        range=(1, 3600),
        sweep=True,
        provisioned=True,
    ),
    Setting(
        "GUNICORN_KEEPALIVE",
        "int",
        75,
        "Seconds an idle keep-alive connection stays open (gunicorn's 2 s made clients reuse "
        "closed connections: failed requests).",
        range=(1, 3600),
        sweep=True,
        provisioned=True,
    ),
    Setting(
        "GUNICORN_LOGLEVEL",
        "choice",
        "info",
        "gunicorn's error log level.",
        choices=("debug", "info", "warning", "error", "critical"),
    ),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
# typed defaults by name (required settings left out)
DEFAULTS: dict[str, str | int | float | bool] = {s.name: s.default for s in SETTINGS if s.default is not None}
