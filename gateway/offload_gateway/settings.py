"""The gateway's settings, read from environment variables; names, defaults and choices are
settings_table.py's (docs/interfaces.md, "Gateway settings")."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .settings_table import BY_NAME, DEFAULTS

PUBLISHER_NAMES = BY_NAME["PUBLISHER"].choices

# AMQP_URL may list several brokers, tried in order, the next on a lost connection (kombu's syntax)
URL_SEPARATOR = ";"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A setting is missing or has a value the gateway cannot use."""


@dataclass(frozen=True)
class Settings:
    # the defaults are settings_table.py's (its docs say what each setting does)
    amqp_url: str
    core_url: str = DEFAULTS["CORE_URL"]
    publisher: str = DEFAULTS["PUBLISHER"]
    publish_confirm: bool = DEFAULTS["PUBLISH_CONFIRM"]
    publish_timeout_s: float = DEFAULTS["PUBLISH_TIMEOUT_S"]
    task_queue: str = DEFAULTS["TASK_QUEUE"]
    # covers the largest work_ms a request may ask for (60 s) plus slack
    core_timeout_s: float = DEFAULTS["CORE_TIMEOUT_S"]
    core_connect_timeout_s: float = DEFAULTS["CORE_CONNECT_TIMEOUT_S"]
    max_body_bytes: int = DEFAULTS["MAX_BODY_BYTES"]
    body_read_timeout_s: float = DEFAULTS["BODY_READ_TIMEOUT_S"]
    # requests one process serves at once (gunicorn_conf sets it after fork from the worker
    # settings); sizes the producer pool and the HTTP pool towards the core
    worker_concurrency: int = DEFAULTS["WORKER_CONCURRENCY"]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        env = _Reader(environ)
        return cls(
            amqp_url=env.url_list("AMQP_URL", schemes=("amqp", "amqps")),
            core_url=env.url("CORE_URL", cls.core_url, schemes=("http", "https")),
            publisher=env.choice("PUBLISHER", cls.publisher, PUBLISHER_NAMES),
            publish_confirm=env.flag("PUBLISH_CONFIRM", cls.publish_confirm),
            publish_timeout_s=env.seconds("PUBLISH_TIMEOUT_S", cls.publish_timeout_s),
            task_queue=env.text("TASK_QUEUE", cls.task_queue),
            core_timeout_s=env.seconds("CORE_TIMEOUT_S", cls.core_timeout_s),
            core_connect_timeout_s=env.seconds("CORE_CONNECT_TIMEOUT_S", cls.core_connect_timeout_s),
            max_body_bytes=env.positive_int("MAX_BODY_BYTES", cls.max_body_bytes),
            body_read_timeout_s=env.seconds("BODY_READ_TIMEOUT_S", cls.body_read_timeout_s),
            worker_concurrency=env.positive_int("WORKER_CONCURRENCY", cls.worker_concurrency),
        )

    @property
    def amqp_urls(self) -> tuple[str, ...]:
        """The brokers of AMQP_URL in the order they are tried (one for a single broker)."""
        return split_urls(self.amqp_url)

    def public(self) -> dict[str, object]:
        """The settings without secrets (the AMQP passwords), for logs and /healthz."""
        return {
            "amqp": URL_SEPARATOR.join(_without_userinfo(url) for url in self.amqp_urls),
            "core_url": self.core_url,
            "publisher": self.publisher,
            "publish_confirm": self.publish_confirm,
            "publish_timeout_s": self.publish_timeout_s,
            "task_queue": self.task_queue,
        }


class _Reader:
    def __init__(self, environ: Mapping[str, str]):
        self._environ = environ

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def text(self, name: str, default: str) -> str:
        return self._raw(name) or default

    def url(self, name: str, default: str | None, schemes: tuple[str, ...]) -> str:
        value = self._raw(name) or default
        if value is None:
            raise SettingsError(f"{name} is not set (expected a URL like {schemes[0]}://host:port/)")
        return _checked_url(name, value, schemes)

    def url_list(self, name: str, schemes: tuple[str, ...]) -> str:
        """One URL, or several separated by ";" (each checked); the text as given, blanks trimmed."""
        value = self._raw(name)
        if value is None:
            raise SettingsError(f"{name} is not set (expected a URL like {schemes[0]}://host:port/)")
        urls = [part.strip() for part in value.split(URL_SEPARATOR)]
        if "" in urls:
            raise SettingsError(f"{name}={redact(value)!r} has an empty entry in its ';'-separated list")
        for url in urls:
            _checked_url(name, url, schemes)
        return URL_SEPARATOR.join(urls)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise SettingsError(f"{name}={value!r} is not one of {', '.join(choices)}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise SettingsError(f"{name}={value!r} is not a flag (use 1 or 0)")

    def seconds(self, name: str, default: float) -> float:
        value = self._raw(name)
        if value is None:
            return default
        try:
            seconds = float(value)
        except ValueError:
            raise SettingsError(f"{name}={value!r} is not a number of seconds") from None
        if not math.isfinite(seconds) or seconds <= 0:
            raise SettingsError(f"{name}={value!r} must be a positive number of seconds")
        return seconds

    def positive_int(self, name: str, default: int) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{name}={value!r} is not an integer") from None
        if number <= 0:
            raise SettingsError(f"{name}={value!r} must be a positive integer")
        return number


def _checked_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise SettingsError(f"{name}={redact(value)!r} has an invalid port") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise SettingsError(f"{name}={redact(value)!r} is not a {'/'.join(schemes)} URL with a host")
    return value


def split_urls(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(URL_SEPARATOR) if part.strip())


def redact(value: str) -> str:
    """The URL, or ";"-separated URLs, with every password replaced by ***."""
    return URL_SEPARATOR.join(_redact_one(url) for url in value.split(URL_SEPARATOR))


def _redact_one(url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password is None:
        return url
    return url.replace(f":{password}@", ":***@", 1)


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}:{parts.port or ''}{parts.path}"
