"""What the sweep drives and reads (`SweepServices`), one collaborator per remote concern, as
protocols: offload_lab.run.connections builds the real ones, tests pass fakes."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..hosts.lab_names import BrokerNames, role_broker_names
from ..plan.fault_spec import FaultSpec
from ..plan.steps import PlannedStep
from ..services.broker import QueueDepth
from ..services.outcomes import OutcomeQueue


class K6Like(Protocol):
    """k6 on the loadgen(s) (offload_lab.loadgen.k6.RemoteK6, offload_lab.loadgen.k6_fleet.K6Fleet). One whose
    `reports_load_start` is true takes run(step, on_start=...) and calls on_start with the unix
    time its load began (the fleet: when its paused generators were resumed)."""

    def run(self, step: PlannedStep) -> dict[str, Any]: ...
    def stop(self) -> dict[str, Any] | None: ...  # the partial summary k6 wrote, if any
    def pull_samples(self, step: PlannedStep, local_path: Path) -> int | None: ...


class CoreLike(Protocol):
    def reset(self) -> None: ...
    def read(self) -> dict[str, Any]: ...
    def idle(self) -> bool: ...


class GatewayLike(Protocol):
    def begin(self) -> None: ...
    def apply(self, settings: dict[str, str]) -> bool: ...
    def restore(self) -> bool: ...


class BrokerSettingsLike(Protocol):
    def begin(self) -> None: ...
    def apply(self, stats_interval_ms: int | None) -> bool: ...
    def restore(self) -> bool: ...
    def effective_s(self, stats_interval_ms: int | None) -> float | None: ...


class TimelineLike(Protocol):
    def start(self) -> None: ...
    def stop(self) -> dict[str, Any]: ...


class FaultsLike(Protocol):
    def start(self, load_started_unix_s: float) -> None: ...
    def join(self) -> list[dict[str, Any]]: ...
    def abort(self) -> None: ...


class CpuLike(Protocol):
    def snapshot(self) -> dict[str, dict[str, int] | None]: ...
    def timeline(self, t0_unix_s: float, limit_s: float, interval_s: float = 1.0) -> TimelineLike: ...


class _NoTimeline:
    """Host sampling switched off: a step's hosts_timeline is None."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        return None


NO_TIMELINE = _NoTimeline()


@dataclass
class SweepServices:
    """What the sweep drives and reads, one object per remote concern (k6, core, gateway,
    CPU counters, queue depths); fakes stand in for them in tests."""

    k6: K6Like
    core: CoreLike
    gateway: GatewayLike
    cpu: CpuLike
    queue_depth: Callable[[str], QueueDepth | int]  # queue name -> its depth
    host_groups: dict[str, str] = field(default_factory=dict)  # host name -> group, for step files
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    sample_interval_s: float | None = None  # None: each step's instruments (tests set a short one)
    # the queues by the inventory's names (connections passes them; fakes get the roles' defaults)
    broker_names: BrokerNames = field(default_factory=role_broker_names)
    # where the cores' outcome records are read, by ledger mode (offload_lab.plan.instruments):
    # file and broker; a mode without one (off) has no ledger
    ledgers: dict[str, OutcomeQueue] = field(default_factory=dict)
    faults: Callable[[tuple[FaultSpec, ...]], FaultsLike] | None = None  # performs a step's faults
    empty_timeout_s: float = 60  # how long a step waits for an empty queue before it is refused
    core_settings: GatewayLike | None = None  # switches the cores' settings (services.core.CoreSettings)
    # the broker's version and the settings of its queues (these delay queues too)
    broker_facts: Callable[[Sequence[str]], dict[str, Any]] | None = None
    calibrate: Callable[[], dict[str, Any]] | None = None  # the run's calibration point (calibration.py)
    broker_settings: BrokerSettingsLike | None = (
        None  # the broker's statistics emission (services/broker_settings.py)
    )
    # every queue of the vhost and its messages, in one request: the retries' delay queues
    # (services/retry_queues.py) are read from it; None: not read (no retry sampling, no wait for them)
    queue_depths: Callable[[], dict[str, int]] | None = None
