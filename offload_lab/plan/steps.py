"""The steps a validated sweep spec plans, in the order they run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..records import step_file_name
from .fault_spec import FaultSpec
from .instruments import DEFAULT_INSTRUMENTS, Instruments
from .spec import SeriesSpec, SweepSpec
from .spec_fields import BY_KEY


@dataclass(frozen=True)
class PlannedStep:
    """One step of a sweep as the spec plans it: what k6 offers, with which gateway and core
    settings. The attributes a spec key's k6 variable reads are named by spec_fields.K6Variable."""

    index: int
    mode: str
    rate: int
    duration_s: int
    pre_allocated_vus: int
    max_vus: int
    work_ms: int
    label: str
    gateway: dict[str, str] = field(default_factory=dict)  # settings the sweep switches (overrides)
    request_timeout_s: float = BY_KEY["request_timeout_s"].default
    repeat: int = 1  # which repeat of its point (series, mode, rate) this step is, 1-based
    repeats: int = 1  # how many times the spec repeats every point (fab capacity: boundary_repeats)
    faults: tuple[FaultSpec, ...] = ()  # performed during the load, at their at_s
    core: dict[str, str] = field(default_factory=dict)  # core settings the sweep switches
    instruments: Instruments = DEFAULT_INSTRUMENTS  # the sweep's own, for this step

    @property
    def filename(self) -> str:
        return step_file_name(self.index, self.mode, self.rate, self.repeat, self.repeats)

    @property
    def stem(self) -> str:
        return self.filename.removesuffix(".json")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def expand_steps(spec: SweepSpec) -> list[PlannedStep]:
    """The ordered list of steps a (validated) spec describes.

    interleaved: for each rate, each series, each mode   (50 sync, 50 async, 100 sync, ...)
    by_mode:     for each series, each mode, each rate   (all sync rates, then all async rates)
    by_series:   for each series, each rate, each mode   (fewest gateway restarts with series)

    With `repeat: N` the whole order runs N times (all points once, then all again), so that
    drift on the host hits every series alike.
    """
    series = spec.series or [SeriesSpec(label=None, modes=spec.modes)]
    rates = spec.rates
    combos: list[tuple[SeriesSpec, str, int]] = []
    if spec.order == "interleaved":
        combos = [(s, m, r) for r in rates for s in series for m in s.modes]
    elif spec.order == "by_mode":
        combos = [(s, m, r) for s in series for m in s.modes for r in rates]
    else:
        combos = [(s, m, r) for s in series for r in rates for m in s.modes]
    rounds = [(r, combo) for r in range(1, spec.repeat + 1) for combo in combos]
    instruments = {
        id(s): DEFAULT_INSTRUMENTS.with_overrides({**spec.instruments, **s.instruments}) for s in series
    }
    return [
        PlannedStep(
            index=i,
            mode=mode,
            rate=rate,
            duration_s=spec.duration_s,
            pre_allocated_vus=spec.pre_allocated_vus,
            max_vus=spec.max_vus,
            work_ms=spec.work_ms,
            label=s.label or mode,
            gateway={**spec.gateway, **s.gateway},
            request_timeout_s=spec.request_timeout_s,
            repeat=repeat,
            repeats=spec.repeat,
            faults=s.faults,
            core={**spec.core, **s.core, **instruments[id(s)].core_settings()},
            instruments=instruments[id(s)],
        )
        for i, (repeat, (s, mode, rate)) in enumerate(rounds, start=1)
    ]


def estimate_seconds(spec: SweepSpec) -> float:
    """A rough lower bound of a sweep's wall time: load + cooldowns (drains not included)."""
    steps = expand_steps(spec)
    return sum(s.duration_s for s in steps) + spec.cooldown_s * max(0, len(steps) - 1)
