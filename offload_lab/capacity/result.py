"""What a `fab capacity` search found (offload_lab/capacity.py): the capacity, the first failure
and why, the bottleneck its evidence names, the spread its repeats give
(offload_lab/capacity_repeats.py), as the terminal's lines, capacity.json and capacity.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .probe import Probe, Slo
from .repeats import Spread, capacity_of


@dataclass
class CapacityResult:
    mode: str
    slo: Slo
    probes: list[Probe]
    capacity: int | None  # the highest rate that passed in every probe at it (None: none did)
    first_failure: Probe | None  # the lowest rate that failed (in any repeat)
    stopped: str | None  # why the search ended (None: interrupted)
    extra: dict[str, Any] = field(default_factory=dict)  # what was held constant (run folder, settings)
    boundary_repeats: int | None = None  # the run's setting (None: a run from before repeats)

    @classmethod
    def of(
        cls, mode: str, slo: Slo, probes: list[Probe], stopped: str | None, boundary_repeats: int | None
    ) -> CapacityResult:
        """The result its probes give, in any order (a search's, a rejudged run's)."""
        failing = [p for p in probes if not p.passed]
        first = min(failing, key=lambda p: p.rate) if failing else None
        return cls(mode, slo, probes, capacity_of(probes), first, stopped, boundary_repeats=boundary_repeats)

    @property
    def spread(self) -> Spread:
        return Spread.of(self.probes, self.capacity, self.boundary_repeats)

    @property
    def invalid_probe(self) -> Probe | None:
        """A failing probe the load generator limited: the first failure, or one at the boundary."""
        boundary = [p for rate in self.spread.rates for p in rate.probes]
        first = [self.first_failure] if self.first_failure is not None else []
        return next((p for p in first + boundary if not p.passed and p.invalid), None)

    @property
    def invalid(self) -> bool:
        return self.invalid_probe is not None

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
            rate = self.invalid_probe.rate
            return f"{path}: INVALID: the load generator, not the lab, limited the probe at {rate}/s"
        if self.capacity is None:
            below = f" below {self.first_failure.rate}/s" if self.first_failure else ""
            return f"{path}: no rate met the SLO ({slo}){below}"
        more = "" if self.first_failure else " (or more: no probe failed)"
        return f"{path}: {self.capacity:,}/s{more} ({slo})"

    def _failed_of(self, rate: int) -> str:
        """How many of a repeated rate's probes failed (empty for a rate probed once)."""
        at = [p for p in self.probes if p.rate == rate]
        failed = sum(1 for p in at if not p.passed)
        return f" (failed {failed} of {len(at)} probes)" if len(at) > 1 else ""

    def lines(self) -> list[str]:
        out = [self.headline()]
        f = self.first_failure
        if f is not None:
            out.append(f"first failure: {f.rate:,}/s{self._failed_of(f.rate)}: " + "; ".join(f.reasons))
            out.append(f"bottleneck: {self.bottleneck_text()}")
        out.append(f"{len(self.probes)} probes: " + ", ".join(_probe_text(p) for p in self.probes))
        out.append(f"spread: {self.spread.text()}")
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
            "spread": self.spread.as_dict(),
            "headline": self.headline(),
            "probes": [p.as_dict() for p in self.probes],
            **self.extra,
        }

    def markdown(self) -> str:
        out = [f"# {self.headline()}", ""]
        f = self.first_failure
        if f is not None:
            out += [
                f"**First failure at {f.rate:,}/s{self._failed_of(f.rate)}:** " + "; ".join(f.reasons) + ".",
                "",
            ]
            out += [f"**Bottleneck:** {self.bottleneck_text()}.", ""]
        out += [f"Search stopped: {self.stopped or 'interrupted'}.", ""]
        out += self.spread.markdown()
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
