"""Gateway settings a sweep spec may switch, per sweep or per series: their names, documented
defaults and allowed values, and the check of a spec's `gateway:` mapping."""

from __future__ import annotations

from typing import Any

from .checks import int_in, num_in

PUBLISHERS = ("kombu_pool", "pika_per_request", "pika_shared")
WORKER_CLASSES = ("gevent", "gthread", "sync")

# gateway settings a spec may switch per sweep or per series (docs/interfaces.md); values are
# written as KEY=VALUE lines into /etc/offload/gateway.sweep.env
GATEWAY_KEYS = (
    "PUBLISHER",
    "PUBLISH_CONFIRM",
    "PUBLISH_TIMEOUT_S",
    "GUNICORN_WORKER_CLASS",
    "GUNICORN_WORKERS",
    "GUNICORN_THREADS",
    "GUNICORN_WORKER_CONNECTIONS",
    "GUNICORN_TIMEOUT",
)
# the documented defaults, used to describe a step's effective gateway settings
GATEWAY_DEFAULTS = {
    "PUBLISHER": "kombu_pool",
    "PUBLISH_CONFIRM": "1",
    "PUBLISH_TIMEOUT_S": "1",
    "GUNICORN_WORKER_CLASS": "gevent",
    "GUNICORN_WORKERS": "2",
    "GUNICORN_THREADS": "1",
    "GUNICORN_WORKER_CONNECTIONS": "1000",
    "GUNICORN_TIMEOUT": "30",
}


def validate_gateway(problems: list[str], key: str, value: Any) -> dict[str, str] | None:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{key}: must be a mapping of gateway settings, got {value!r}")
        return None
    out: dict[str, str] = {}
    ok = True
    for name, v in value.items():
        k = f"{key}.{name}"
        if name not in GATEWAY_KEYS:
            problems.append(f"{k}: unknown gateway setting (known: {', '.join(GATEWAY_KEYS)})")
            ok = False
            continue
        if name == "PUBLISHER":
            if v not in PUBLISHERS:
                problems.append(f"{k}: unknown publisher {v!r} (known: {', '.join(PUBLISHERS)})")
                ok = False
                continue
            out[name] = v
        elif name == "PUBLISH_CONFIRM":
            if isinstance(v, bool):
                out[name] = "1" if v else "0"
            elif v in (0, 1, "0", "1"):
                out[name] = str(v)
            else:
                problems.append(f"{k}: must be 0/1 or true/false, got {v!r}")
                ok = False
        elif name == "GUNICORN_WORKER_CLASS":
            if v not in WORKER_CLASSES:
                problems.append(f"{k}: unknown worker class {v!r} (known: {', '.join(WORKER_CLASSES)})")
                ok = False
                continue
            out[name] = v
        elif name == "PUBLISH_TIMEOUT_S":
            n = num_in(problems, k, _maybe_number(v), 0.01, 60)
            if n is None:
                ok = False
            else:
                out[name] = _fmt_number(n)
        else:
            hi = {
                "GUNICORN_WORKERS": 64,
                "GUNICORN_THREADS": 1024,
                "GUNICORN_WORKER_CONNECTIONS": 100000,
                "GUNICORN_TIMEOUT": 3600,
            }[name]
            n = int_in(problems, k, _maybe_number(v), 1, hi)
            if n is None:
                ok = False
            else:
                out[name] = str(n)
    return out if ok else None


def _maybe_number(v: Any) -> Any:
    """Gateway settings may be written as strings in YAML ("8"); accept numeric strings."""
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v
    return v


def _fmt_number(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else str(n)
