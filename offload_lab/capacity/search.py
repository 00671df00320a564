"""`fab capacity`: the highest rate a path sustains within an SLO, found with few real probes.

Search: from --start, double the rate until a probe fails (or --max-rate passes), then bisect
between the last pass and the first failure until they are within RESOLUTION of each other;
never more than MAX_PROBES probes. Then, with boundary_repeats above 1, the boundary is probed
again until the capacity is a rate that passed in every repeat (offload_lab/capacity/repeats.py).
A probe is one k6 step (offload_lab/run/sweep.py), judged by offload_lab/capacity/probe.py. The
search is pure: `CapacitySearch` says which rate to probe next and takes each verdict; `search()`
runs it against any probe function (tests use fakes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..plan.capacity_fields import BY_OPTION, CAPACITY_MODES
from ..plan.checks import in_range
from ..plan.core_spec import validate_core
from ..plan.gateway_spec import validate_gateway
from ..plan.overrides import flag, option_text
from ..plan.spec import SpecError, SweepSpec, apply_overrides
from ..plan.spec_fields import BY_KEY as SWEEP_FIELD
from ..plan.steps import PlannedStep
from ..records import CAPACITY_FILE, write_json
from .probe import Probe, Slo, probe_vus
from .repeats import BoundaryRepeats, repeat_budget
from .result import CapacityResult

MAX_PROBES = 12
RESOLUTION = 0.05  # stop bisecting when the failure is within 5 % of the last pass


class CapacitySearch:
    def __init__(
        self,
        start: int,
        max_rate: int,
        max_probes: int = MAX_PROBES,
        resolution: float = RESOLUTION,
        boundary_repeats: int = 1,  # 1: the boundary is not probed again
    ):
        if not 1 <= start <= max_rate:
            raise ValueError(f"start ({start}) must be between 1 and max_rate ({max_rate})")
        self.start = start
        self.max_rate = max_rate
        self.max_probes = max_probes
        self.resolution = resolution
        self.boundary_repeats = boundary_repeats
        self.probes: list[Probe] = []  # the search's, then the repeats'
        self.searched = 0  # how many of the probes the search made
        self.passed: int | None = None  # the highest rate that passed
        self.failed: Probe | None = None  # the lowest rate that failed
        self.repeats: BoundaryRepeats | None = None  # once the search is over and has a boundary

    @property
    def stopped(self) -> str | None:
        """Why the search and its repeats ended (None: they did not)."""
        reason = self.stop_reason
        if reason is None or self.repeats is None:
            return reason
        return f"{reason}; repeats: {self.repeats.stop_reason or 'not finished'}"

    @property
    def stop_reason(self) -> str | None:
        """Why the search (before any repeat) is over (None: it is not)."""
        if self.failed is not None and self.failed.invalid:
            return "the load generator limited a probe: the result is invalid"
        if self.failed is None and self.passed == self.max_rate:
            return f"--max-rate {self.max_rate} passed"
        if self.failed is not None and self._resolved():
            return f"within {self.resolution:.0%} (or 1/s)"
        if self.searched >= self.max_probes:
            return f"{self.max_probes} probes (the most a search makes)"
        return None

    def _resolved(self) -> bool:
        low = self.passed or 0
        return self.failed.rate - low <= max(1, self.resolution * max(low, 1))

    def next_rate(self) -> int | None:
        if self.repeats is None:
            rate = self._search_rate()
            if rate is not None or not self._boundary_to_repeat():
                return rate
            self.repeats = BoundaryRepeats(self.probes, self.boundary_repeats, self.max_rate)
        return self.repeats.next_rate()

    def _boundary_to_repeat(self) -> bool:
        """Repeats asked for, a rate that passed, and no probe the load generator limited."""
        invalid = self.failed is not None and self.failed.invalid
        return self.boundary_repeats > 1 and self.passed is not None and not invalid

    def _search_rate(self) -> int | None:
        if self.stop_reason is not None:
            return None
        if self.failed is None:  # still growing: x2, up to --max-rate
            return self.start if self.passed is None else min(self.passed * 2, self.max_rate)
        low = self.passed or 0  # nothing passed yet: bisect down towards 0
        return (low + self.failed.rate) // 2 if self.failed.rate - low > 1 else None

    def record(self, probe: Probe) -> None:
        self.probes.append(probe)
        if self.repeats is not None:
            self.repeats.record(probe)
            return
        self.searched += 1
        if probe.passed:
            self.passed = max(self.passed or 0, probe.rate)
        elif self.failed is None or probe.rate < self.failed.rate:
            self.failed = probe

    def result(self, mode: str, slo: Slo) -> CapacityResult:
        return CapacityResult.of(mode, slo, list(self.probes), self.stopped, self.boundary_repeats)


def search(
    probe: Callable[[int], Probe],
    start: int,
    max_rate: int,
    mode: str = "async",
    slo: Slo | None = None,
    max_probes: int = MAX_PROBES,
    boundary_repeats: int = 1,
) -> CapacityResult:
    """Run a whole search with `probe` (rate -> verdict)."""
    s = CapacitySearch(start, max_rate, max_probes, boundary_repeats=boundary_repeats)
    while (rate := s.next_rate()) is not None:
        s.record(probe(rate))
    return s.result(mode, slo or Slo())


# --------------------------------------------------------------------------------------------
# the command: its options checked before any load, the probes as sweep steps, the result files


@dataclass(frozen=True)
class CapacityPlan:
    spec: SweepSpec  # one mode, the settings held constant; its rates are the first probe's
    slo: Slo
    start: int
    max_rate: int
    boundary_repeats: int

    @property
    def mode(self) -> str:
        return self.spec.modes[0]

    @property
    def max_probes(self) -> int:
        """The search's probes and its repeats' at most."""
        return MAX_PROBES + repeat_budget(self.boundary_repeats)


# the numeric options (offload_lab/plan/capacity_fields.py): option -> its field, and its default
NUMBERS = {option: f for option, f in BY_OPTION.items() if f.type in ("int", "number")}
DEFAULTS = {option: f.default for option, f in NUMBERS.items()}


def check_number(problems: list[str], option: str, value: Any, key: str | None = None):
    """An option's value (text from the command line or a YAML number) as a number within its
    bounds, or None after appending a problem named `key` (default: the option's flag)."""
    spec_field = NUMBERS[option]
    key = key or flag(option)
    if isinstance(value, bool):
        problems.append(f"{key}: must be a number, got {value!r}")
        return None
    try:
        number = option_text(spec_field).parse(str(value).strip())
    except ValueError as exc:
        problems.append(f"{key}: {exc}")
        return None
    return in_range(problems, key, number, *spec_field.range, integer=spec_field.type == "int")


def check_mode(problems: list[str], mode: Any, key: str = "--mode") -> str | None:
    if mode is None:
        problems.append(f"{key}: required, one of {', '.join(CAPACITY_MODES)}")
    elif mode not in CAPACITY_MODES:
        problems.append(f"{key}: must be sync, async or noop, got {mode!r}")
    else:
        return mode
    return None


def plan(options: dict[str, Any]) -> CapacityPlan:
    """The options of `fab capacity` (strings, None = default), checked; raises SpecError naming
    every bad option before anything touches the lab."""
    options = {k: v for k, v in options.items() if v is not None and v != ""}
    problems: list[str] = []
    unknown = sorted(set(options) - set(BY_OPTION))
    problems += [f"{flag(o)}: not an option of `fab capacity`" for o in unknown]
    mode = check_mode(problems, options.get("mode"))
    values = {**DEFAULTS, **options}
    p95, errors, start, max_rate, duration, repeats = (
        check_number(problems, o, values[o])
        for o in ("slo_p95_ms", "max_error_pct", "start", "max_rate", "duration", "boundary_repeats")
    )
    if start is not None and max_rate is not None and max_rate < start:
        problems.append(f"--max-rate: must not be below --start ({start}), got {max_rate}")
    settings = {}
    for option, validate in (("gateway", validate_gateway), ("core", validate_core)):
        try:
            parsed = option_text(BY_OPTION[option]).parse(options[option]) if option in options else {}
        except ValueError as exc:
            problems.append(f"{flag(option)}: {exc}")
            continue
        settings[option] = validate(problems, f"{option} ({flag(option)})", parsed)
    if problems:
        raise SpecError(problems, "command line")
    return make_plan(
        mode,
        Slo(p95, errors),
        start,
        max_rate,
        duration,
        settings,
        boundary_repeats=repeats,
        source="command line",
        names={"gateway": "--gateway", "core": "--core"},
    )


def make_plan(
    mode: str,
    slo: Slo,
    start: int,
    max_rate: int,
    duration_s: int,
    settings: dict[str, dict[str, Any]],
    work_ms: int | None = None,
    name: str | None = None,
    boundary_repeats: int = BY_OPTION["boundary_repeats"].default,
    source: str = "command line",
    names: dict[str, str] | None = None,
) -> CapacityPlan:
    """A search's plan from checked numbers; its gateway and core settings (and work_ms) are
    checked like a sweep spec's (SpecError naming them, as `names` calls them).

    A noop probe posts /noop with work_ms 0: nothing is queued or worked, so no core place is
    counted for it (offload_lab.plan.limits) and no ledger, drain or backlog is expected of it."""
    raw = {
        "name": name or f"capacity-{mode}",
        "rates": [start],
        "duration_s": duration_s,
        "max_vus": probe_vus(mode, start, SWEEP_FIELD["work_ms"].default, slo),
        # the spec knows sync and async; a noop plan is checked as async (the same request)
        "modes": ["async" if mode == "noop" else mode],
        "cooldown_s": 3,
        "gateway": settings.get("gateway") or {},
        "core": settings.get("core") or {},
    }
    if mode == "noop":
        raw["work_ms"] = 0
    elif work_ms is not None:
        raw["work_ms"] = work_ms
    spec = apply_overrides(raw, {}, source, names or {})
    if mode == "noop":
        spec = replace(spec, modes=["noop"])
    return CapacityPlan(spec, slo, start, max_rate, boundary_repeats)


def probe_steps(search_state: CapacitySearch, p: CapacityPlan) -> Iterator[PlannedStep]:
    """The probes as sweep steps, each planned once the previous one's verdict is in; a rate's
    probes are its repeats 1, 2, ... (named `-r<R>` like a sweep's repeats when there are any)."""
    index = 0
    while (rate := search_state.next_rate()) is not None:
        index += 1
        repeat = 1 + sum(1 for probe in search_state.probes if probe.rate == rate)
        vus = probe_vus(p.mode, rate, p.spec.work_ms, p.slo)
        yield PlannedStep(
            index=index,
            mode=p.mode,
            rate=rate,
            duration_s=p.spec.duration_s,
            pre_allocated_vus=vus,
            max_vus=vus,
            work_ms=p.spec.work_ms,
            label=p.mode,
            gateway=dict(p.spec.gateway),
            request_timeout_s=p.spec.request_timeout_s,
            repeat=repeat,
            repeats=p.boundary_repeats,
            core=dict(p.spec.core),
        )


def write_result(folder: Path, result: CapacityResult) -> tuple[Path, Path]:
    json_path, md_path = folder / CAPACITY_FILE, folder / "capacity.md"
    write_json(json_path, result.as_dict())
    md_path.write_text(result.markdown(), encoding="utf-8")
    return json_path, md_path
