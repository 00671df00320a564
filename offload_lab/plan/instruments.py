"""The sweep's own instruments, each a setting (spec key `instruments:`, per sweep or per series;
`fab sweep --instruments KEY=VALUE,...`): what each one is, its default, the check of a spec's
mapping, and what a step records of them. docs/measurement.md, "Instruments and their cost",
gives what each one costs on the lab (docs/results/overhead).

- ledger: where the core records each task's outcome: `file` (a local append-only file on every
  core host, read over SSH after the drain), `broker` (a second confirmed message per task, to
  the tasks.done queue on the broker under test) or `off` (no proof per task id). Unset: as the
  cores were provisioned (roles/core_go: core_go_ledger, the lab's default `file`).
- samples: k6 writes every request (`--out csv`), which the per-second charts, the ledger's
  accepted ids and the fault effects are computed from.
- host_sampling_s: seconds between readings of every host's CPU and pressure during a step (one
  SSH loop per host); 0 = off.
- queue_sampling_s: seconds between readings of the task queue's depth (the management API),
  and of the retries' delay queues in the steps that retry (offload_lab.services.retry_queues), which
  also end the drain wait.
- broker_stats_s: seconds between the broker's statistics emissions (RabbitMQ's
  collect_statistics_interval), which the management API's queue figures come from. Unset: as
  provisioned (roles/rabbitmq: rabbitmq_stats_interval_ms); switching it restarts the broker and
  its clients (offload_lab/services/broker_settings.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from .checks import num_in
from .core_spec import LEDGER

LEDGER_MODES = ("file", "broker", "off")
MAX_SAMPLING_S = 60.0
ON_OFF = {"on": True, "off": False, "true": True, "false": False}


@dataclass(frozen=True)
class Instruments:
    ledger: str | None = None  # None: as provisioned
    samples: bool = True
    host_sampling_s: float = 1.0
    queue_sampling_s: float = 1.0
    broker_stats_s: float | None = None  # None: as provisioned

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def core_settings(self) -> dict[str, str]:
        """The core settings a step switches for its ledger ({}: the provisioned one)."""
        return {LEDGER: self.ledger} if self.ledger is not None else {}

    def broker_stats_ms(self) -> int | None:
        """collect_statistics_interval for the step's broker (None: as provisioned)."""
        return None if self.broker_stats_s is None else round(self.broker_stats_s * 1000)

    def with_overrides(self, overrides: dict[str, Any]) -> Instruments:
        return replace(self, **overrides)


DEFAULT_INSTRUMENTS = Instruments()
KEYS = tuple(DEFAULT_INSTRUMENTS.as_dict())


def validate_instruments(problems: list[str], key: str, value: Any) -> dict[str, Any] | None:
    """A spec's `instruments:` mapping, typed (only the keys it sets), or None after appending
    its problems. Text values (from the command line) are accepted like YAML's."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{key}: must be a mapping of {', '.join(KEYS)}, got {value!r}")
        return None
    out: dict[str, Any] = {}
    ok = True
    for name, v in value.items():
        checked = _check_one(problems, f"{key}.{name}", name, v)
        if checked is _BAD:
            ok = False
        else:
            out[name] = checked
    return out if ok else None


_BAD = object()


def _check_one(problems: list[str], key: str, name: str, value: Any) -> Any:
    if name == "ledger":
        if value not in LEDGER_MODES:
            problems.append(f"{key}: must be one of {', '.join(LEDGER_MODES)}, got {value!r}")
            return _BAD
        return value
    if name == "samples":
        flag = _on_off(value)
        if flag is None:
            problems.append(f"{key}: must be on or off, got {value!r}")
            return _BAD
        return flag
    if name == "broker_stats_s":
        seconds = num_in(problems, key, _number(value), 0.1, MAX_SAMPLING_S)
        return _BAD if seconds is None else float(seconds)
    if name in ("host_sampling_s", "queue_sampling_s"):
        if name == "host_sampling_s" and _on_off(value) is False:
            return 0.0
        lo = 0.0 if name == "host_sampling_s" else 0.1
        seconds = num_in(problems, key, _number(value), lo, MAX_SAMPLING_S)
        if seconds is None:
            return _BAD
        if name == "host_sampling_s" and 0 < seconds < 0.5:
            problems.append(f"{key}: 0 (off) or at least 0.5 s, got {seconds}")
            return _BAD
        return float(seconds)
    problems.append(f"{key}: unknown instrument (known: {', '.join(KEYS)})")
    return _BAD


def _on_off(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return ON_OFF.get(value.strip().lower())
    return None


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value.strip().removesuffix("s"))
        except ValueError:
            return value
    return value


def describe(instruments: Instruments, provisioned_ledger: str | None = None) -> str:
    """One line for fab check's plan and the report header."""
    ledger = instruments.ledger or (
        f"{provisioned_ledger} (as provisioned)" if provisioned_ledger else "as provisioned"
    )
    host = f"every {instruments.host_sampling_s:g} s" if instruments.host_sampling_s else "off"
    stats = (
        "as provisioned" if instruments.broker_stats_s is None else f"every {instruments.broker_stats_s:g} s"
    )
    return (
        f"ledger {ledger}; samples {'on' if instruments.samples else 'off'}; "
        f"host sampling {host}; queue depth every {instruments.queue_sampling_s:g} s; "
        f"broker statistics {stats}"
    )
