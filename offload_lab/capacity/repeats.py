"""The boundary of a `fab capacity` search probed again (`boundary_repeats`,
offload_lab/capacity_fields.py), and the spread of the capacity its repeats give.

Once the search (offload_lab/capacity.py) has its boundary, the highest rate that passed and the
lowest that failed, each is probed until it has `boundary_repeats` probes, interleaved (pass rate,
fail rate, pass rate, ...) so that drift on a shared host hits both alike. A repeat that flips a
verdict moves its side on: a passing rate that fails once walks down to the next lower rate that
passed every time (one the search probed, else half the rate), a failing rate that passes once
walks up to the next higher rate that failed every time (the search's, else double, up to
--max-rate). So the capacity is a rate that passed in every repeat, and between it and the lowest
rate that failed in every repeat lie the rates whose verdict flipped.

Pure, like the search: `BoundaryRepeats` says which rate to probe next and takes each verdict;
`Spread` reads the boundary's verdicts and figures off any list of probes (a rejudged run's too,
and a run from before repeats, whose spread is unknown)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..analysis.fmt import spread as median_range
from .probe import Probe

PASS_SIDE, FAIL_SIDE = "pass", "fail"
# a figure of Probe.figures as the spread writes it: name, unit, digits
FIGURE_TEXT = {
    "p95_ms": ("p95", " ms", 1),
    "error_pct": ("errors", " %", 2),
    "dropped": ("dropped", "", 0),
    "busy_vus": ("busy VUs", "", 0),
    "backlog_peak": ("backlog peak", "", 0),
}


def repeat_budget(boundary_repeats: int) -> int:
    """The most probes the repeats make: twice what repeating the two boundary rates takes, so
    that a flipped verdict or two can walk on."""
    return 4 * (boundary_repeats - 1)


def by_rate(probes: Iterable[Probe]) -> dict[int, list[Probe]]:
    """Each probed rate's probes in the order they ran, lowest rate first."""
    out: dict[int, list[Probe]] = {}
    for p in probes:
        out.setdefault(p.rate, []).append(p)
    return dict(sorted(out.items()))


def capacity_of(probes: Iterable[Probe]) -> int | None:
    """The highest rate that passed in every probe at it (None: none did)."""
    rates = by_rate(probes)
    return max((rate for rate, ps in rates.items() if all(p.passed for p in ps)), default=None)


def failing_rate_of(probes: Iterable[Probe], capacity: int | None) -> int | None:
    """The lowest rate above the capacity that failed in every probe at it (None: none did)."""
    rates = by_rate(probes)
    above = (rate for rate, ps in rates.items() if rate > (capacity or 0) and not any(p.passed for p in ps))
    return min(above, default=None)


class BoundaryRepeats:
    """The repeats of a search's boundary, planned one probe at a time."""

    def __init__(self, probes: list[Probe], repeats: int, max_rate: int):
        self.probes = probes  # the search's, to which the search appends every verdict
        self.repeats = repeats
        self.max_rate = max_rate
        self.budget = repeat_budget(repeats)
        self.made = 0
        capacity = capacity_of(probes)
        self.sides = {PASS_SIDE: capacity, FAIL_SIDE: failing_rate_of(probes, capacity)}
        self.side: str | None = None  # the side of the probe planned last
        self.invalid = False

    def _count(self, rate: int) -> int:
        return sum(1 for p in self.probes if p.rate == rate)

    def _unfinished(self) -> dict[str, int]:
        """side -> its rate, for each side whose rate has fewer probes than the repeats."""
        return {
            side: rate
            for side, rate in self.sides.items()
            if rate is not None and self._count(rate) < self.repeats
        }

    @property
    def stop_reason(self) -> str | None:
        if self.invalid:
            return "the load generator limited a repeat: the result is invalid"
        if not self._unfinished():
            return f"the boundary probed {self.repeats} times"
        if self.made >= self.budget:
            return f"{self.budget} repeats (the most the boundary gets)"
        return None

    def next_rate(self) -> int | None:
        if self.stop_reason is not None:
            return None
        unfinished = self._unfinished()
        if len(unfinished) == 1:
            (self.side,) = unfinished
        else:  # the passing side decides the capacity: it goes first when the budget runs short
            passing_short = self.repeats - self._count(unfinished[PASS_SIDE])
            turn = FAIL_SIDE if self.side == PASS_SIDE else PASS_SIDE
            self.side = PASS_SIDE if self.budget - self.made <= passing_short else turn
        return unfinished[self.side]

    def record(self, probe: Probe) -> None:
        """The verdict of the probe next_rate planned (the search has appended it to probes)."""
        self.made += 1
        if not probe.passed and probe.invalid:
            self.invalid = True
        elif self.side == PASS_SIDE and not probe.passed:
            self.sides[PASS_SIDE] = self._down(probe.rate)
        elif self.side == FAIL_SIDE and probe.passed:
            self.sides[FAIL_SIDE] = self._up(probe.rate)

    def _down(self, rate: int) -> int | None:
        rates = by_rate(self.probes)
        lower = [r for r, ps in rates.items() if r < rate and all(p.passed for p in ps)]
        if lower:
            return max(lower)
        half = rate // 2
        return half if half >= 1 and half not in rates else None

    def _up(self, rate: int) -> int | None:
        rates = by_rate(self.probes)
        higher = [r for r, ps in rates.items() if r > rate and not any(p.passed for p in ps)]
        if higher:
            return min(higher)
        double = min(2 * rate, self.max_rate)
        return double if double > rate and double not in rates else None


@dataclass(frozen=True)
class RateVerdicts:
    """One boundary rate: its probes' verdicts and the spread of the figure that decided them."""

    rate: int
    probes: list[Probe]

    @property
    def passed(self) -> int:
        return sum(1 for p in self.probes if p.passed)

    @property
    def verdict(self) -> str:
        if self.passed == len(self.probes):
            return "passed"
        return "failed" if self.passed == 0 else "flipped"

    @property
    def figure(self) -> str:
        """p95, or for a rate that failed on something else, the figure its first failure broke."""
        broken = [p.failing_figures[0] for p in self.probes if not p.passed and p.failing_figures]
        return broken[0] if broken else "p95_ms"

    def values(self) -> list[float]:
        return [v for p in self.probes if isinstance(v := p.figures.get(self.figure), int | float)]

    def figure_text(self) -> str:
        name, unit, digits = FIGURE_TEXT.get(self.figure, (self.figure, "", 1))
        values = self.values()
        return f"{name} {median_range(values, f'{{:,.{digits}f}}')}" + (unit if values else "")

    def text(self) -> str:
        return f"{self.rate:,}/s passed {self.passed} of {len(self.probes)} ({self.figure_text()})"

    def as_dict(self) -> dict[str, Any]:
        values = self.values()
        return {
            "rate": self.rate,
            "probes": len(self.probes),
            "passed": self.passed,
            "verdict": self.verdict,
            "figure": self.figure,
            "median": statistics.median(values) if values else None,
            "min": min(values, default=None),
            "max": max(values, default=None),
            "steps": [p.step_file for p in self.probes],
        }


@dataclass(frozen=True)
class Spread:
    """What the repeats say about a capacity: the verdicts and figures of every probed rate from
    the capacity up to the lowest rate that failed in every probe (the boundary)."""

    boundary_repeats: int | None  # the run's setting (None: a run from before repeats)
    rates: list[RateVerdicts]

    @classmethod
    def of(cls, probes: list[Probe], capacity: int | None, boundary_repeats: int | None) -> Spread:
        top = failing_rate_of(probes, capacity)
        rates = [
            RateVerdicts(rate, ps)
            for rate, ps in by_rate(probes).items()
            if (capacity is None or rate >= capacity) and (top is None or rate <= top)
        ]
        return cls(boundary_repeats, rates)

    @property
    def repeated(self) -> bool:
        return any(len(v.probes) > 1 for v in self.rates)

    @property
    def flipped_rates(self) -> list[int]:
        return [v.rate for v in self.rates if v.verdict == "flipped"]

    @property
    def highest_passing_rps(self) -> int | None:
        """The highest boundary rate that passed in any repeat: the top of the capacity's spread."""
        return max((v.rate for v in self.rates if v.passed), default=None)

    def text(self) -> str:
        if not self.repeated:
            setting = self.boundary_repeats
            why = "a run from before boundary repeats" if setting is None else f"boundary_repeats {setting}"
            return f"unknown: no rate was probed more than once ({why})"
        flipped = self.flipped_rates
        head = "verdicts never flipped"
        if flipped:
            head = "verdicts flipped at " + ", ".join(f"{r:,}/s" for r in flipped)
        return f"{head}: " + "; ".join(v.text() for v in self.rates)

    def as_dict(self) -> dict[str, Any]:
        return {
            "boundary_repeats": self.boundary_repeats,
            "repeated": self.repeated,
            "flipped_rates": self.flipped_rates,
            "highest_passing_rps": self.highest_passing_rps,
            "rates": [v.as_dict() for v in self.rates],
            "text": self.text(),
        }

    def markdown(self) -> list[str]:
        out = [f"**Spread:** {self.text()}.", ""]
        if not self.repeated:
            return out
        out += ["| rate (req/s) | verdict | passed | figure: median [min-max] | steps |"]
        out += ["|---:|---|---:|---|---|"]
        for v in self.rates:
            steps = ", ".join(p.step_file or "" for p in v.probes)
            out.append(
                f"| {v.rate:,} | {v.verdict} | {v.passed} of {len(v.probes)} | {v.figure_text()} | {steps} |"
            )
        return out + [""]
