"""`fab capacity`: the highest rate a path sustains within an SLO, found with few real probes.

Search: from --start, double the rate until a probe fails (or --max-rate passes), then bisect
between the last pass and the first failure until they are within RESOLUTION of each other;
never more than MAX_PROBES probes. A probe is one k6 step (offload_lab/run/sweep.py), judged by
offload_lab/capacity/probe.py. The search is pure: `CapacitySearch` says which rate to probe
next and takes each verdict; `search()` runs it against any probe function (tests use fakes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
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

MAX_PROBES = 12
RESOLUTION = 0.05  # stop bisecting when the failure is within 5 % of the last pass


class CapacitySearch:
    def __init__(
        self, start: int, max_rate: int, max_probes: int = MAX_PROBES, resolution: float = RESOLUTION
    ):
        if not 1 <= start <= max_rate:
            raise ValueError(f"start ({start}) must be between 1 and max_rate ({max_rate})")
        self.start = start
        self.max_rate = max_rate
        self.max_probes = max_probes
        self.resolution = resolution
        self.probes: list[Probe] = []
        self.passed: int | None = None  # the highest rate that passed
        self.failed: Probe | None = None  # the lowest rate that failed

    @property
    def stop_reason(self) -> str | None:
        """Why the search is over (None: it is not)."""
        if self.failed is not None and self.failed.invalid:
            return "the load generator limited a probe: the result is invalid"
        if self.failed is None and self.passed == self.max_rate:
            return f"--max-rate {self.max_rate} passed"
        if self.failed is not None and self._resolved():
            return f"within {self.resolution:.0%} (or 1/s)"
        if len(self.probes) >= self.max_probes:
            return f"{self.max_probes} probes (the most a search makes)"
        return None

    def _resolved(self) -> bool:
        low = self.passed or 0
        return self.failed.rate - low <= max(1, self.resolution * max(low, 1))

    def next_rate(self) -> int | None:
        if self.stop_reason is not None:
            return None
        if self.failed is None:  # still growing: x2, up to --max-rate
            return self.start if self.passed is None else min(self.passed * 2, self.max_rate)
        low = self.passed or 0  # nothing passed yet: bisect down towards 0
        return (low + self.failed.rate) // 2 if self.failed.rate - low > 1 else None

    def record(self, probe: Probe) -> None:
        self.probes.append(probe)
        if probe.passed:
            self.passed = max(self.passed or 0, probe.rate)
        elif self.failed is None or probe.rate < self.failed.rate:
            self.failed = probe

    def result(self, mode: str, slo: Slo) -> CapacityResult:
        return CapacityResult(mode, slo, list(self.probes), self.passed, self.failed, self.stop_reason)


def search(
    probe: Callable[[int], Probe],
    start: int,
    max_rate: int,
    mode: str = "async",
    slo: Slo | None = None,
    max_probes: int = MAX_PROBES,
) -> CapacityResult:
    """Run a whole search with `probe` (rate -> verdict)."""
    s = CapacitySearch(start, max_rate, max_probes)
    while (rate := s.next_rate()) is not None:
        s.record(probe(rate))
    return s.result(mode, slo or Slo())


@dataclass
class CapacityResult:
    mode: str
    slo: Slo
    probes: list[Probe]
    capacity: int | None  # the highest rate that passed (None: none did)
    first_failure: Probe | None  # the lowest rate that failed
    stopped: str | None  # why the search ended (None: interrupted)
    extra: dict[str, Any] = field(default_factory=dict)  # what was held constant (run folder, settings)

    @property
    def invalid(self) -> bool:
        return self.first_failure is not None and self.first_failure.invalid

    @property
    def bottleneck_probe(self) -> Probe | None:
        """The failed probe whose evidence names the bottleneck: the first failure's, or when its
        evidence names nothing (a marginal failure), the lowest failing rate whose evidence does."""
        f = self.first_failure
        if f is None or f.bottleneck:
            return f
        named = sorted((p for p in self.probes if not p.passed and p.bottleneck), key=lambda p: p.rate)
        return named[0] if named else f

    def bottleneck_text(self) -> str:
        b = self.bottleneck_probe
        if b is None:
            return "none: no probe failed"
        at = "" if b is self.first_failure else f" (named at {b.rate:,}/s)"
        return f"{b.bottleneck or 'not identified'}{at}: " + "; ".join(b.evidence)

    def headline(self) -> str:
        path = f"{self.mode} capacity"
        slo = f"p95 <= {self.slo.p95_ms:g} ms" + (" above the work" if self.mode == "sync" else "")
        slo += f", errors <= {self.slo.max_error_pct:g} %, 0 dropped"
        if self.invalid:
            rate = self.first_failure.rate
            return f"{path}: INVALID: the load generator, not the lab, limited the probe at {rate}/s"
        if self.capacity is None:
            below = f" below {self.first_failure.rate}/s" if self.first_failure else ""
            return f"{path}: no rate met the SLO ({slo}){below}"
        more = "" if self.first_failure else " (or more: no probe failed)"
        return f"{path}: {self.capacity:,}/s{more} ({slo})"

    def lines(self) -> list[str]:
        out = [self.headline()]
        f = self.first_failure
        if f is not None:
            out.append(f"first failure: {f.rate:,}/s: " + "; ".join(f.reasons))
            out.append(f"bottleneck: {self.bottleneck_text()}")
        out.append(f"{len(self.probes)} probes: " + ", ".join(_probe_text(p) for p in self.probes))
        out.append(f"stopped: {self.stopped or 'interrupted'}")
        return out

    def as_dict(self) -> dict[str, Any]:
        f, b = self.first_failure, self.bottleneck_probe
        return {
            "mode": self.mode,
            "slo": {"p95_ms": self.slo.p95_ms, "max_error_pct": self.slo.max_error_pct, "dropped": 0},
            "capacity_rps": self.capacity,
            "valid": not self.invalid,
            "first_failure": None
            if f is None
            else {"rate": f.rate, "reasons": f.reasons, "bottleneck": f.bottleneck, "evidence": f.evidence},
            # what the failing probes' evidence names (the first failure's, or a higher rate's)
            "bottleneck": None
            if b is None
            else {"name": b.bottleneck, "rate": b.rate, "evidence": b.evidence},
            "stopped": self.stopped,
            "headline": self.headline(),
            "probes": [p.as_dict() for p in self.probes],
            **self.extra,
        }

    def markdown(self) -> str:
        out = [f"# {self.headline()}", ""]
        f = self.first_failure
        if f is not None:
            out += [f"**First failure at {f.rate:,}/s:** " + "; ".join(f.reasons) + ".", ""]
            out += [f"**Bottleneck:** {self.bottleneck_text()}.", ""]
        out += [f"Search stopped: {self.stopped or 'interrupted'}.", ""]
        out += [
            "| probe | rate (req/s) | verdict | p95 (ms) | throughput (/s) | dropped | errors (%) | step |"
        ]
        out += ["|---:|---:|---|---:|---:|---:|---:|---|"]
        for i, p in enumerate(self.probes, start=1):
            fig = p.figures
            verdict = "pass" if p.passed else "fail: " + "; ".join(p.reasons)
            out.append(
                f"| {i} | {p.rate:,} | {verdict} | {_num(fig.get('p95_ms'))} | {_num(fig.get('throughput'))} "
                f"| {_num(fig.get('dropped'), 0)} | {_num(fig.get('error_pct'), 2)} | {p.step_file or ''} |"
            )
        return "\n".join(out) + "\n"


def _num(v: Any, digits: int = 1) -> str:
    return "n/a" if not isinstance(v, int | float) else f"{v:,.{digits}f}"


def _probe_text(p: Probe) -> str:
    return f"{p.rate:,} {'pass' if p.passed else 'fail'}"


# --------------------------------------------------------------------------------------------
# the command: its options checked before any load, the probes as sweep steps, the result files


@dataclass(frozen=True)
class CapacityPlan:
    spec: SweepSpec  # one mode, the settings held constant; its rates are the first probe's
    slo: Slo
    start: int
    max_rate: int

    @property
    def mode(self) -> str:
        return self.spec.modes[0]


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
    p95, errors, start, max_rate, duration = (
        check_number(problems, o, values[o])
        for o in ("slo_p95_ms", "max_error_pct", "start", "max_rate", "duration")
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
    return CapacityPlan(spec, slo, start, max_rate)


def probe_steps(search_state: CapacitySearch, p: CapacityPlan) -> Iterator[PlannedStep]:
    """The probes as sweep steps, each planned once the previous one's verdict is in."""
    index = 0
    while (rate := search_state.next_rate()) is not None:
        index += 1
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
            core=dict(p.spec.core),
        )


def write_result(folder: Path, result: CapacityResult) -> tuple[Path, Path]:
    json_path, md_path = folder / CAPACITY_FILE, folder / "capacity.md"
    write_json(json_path, result.as_dict())
    md_path.write_text(result.markdown(), encoding="utf-8")
    return json_path, md_path
