"""The series of a report: the points of one step label (median of their repeats), how they are
drawn (colour, marker, line), and the steps of that series that could not be read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .load import UnreadableStep
from .metrics import StepMetrics

FIXED_COLORS = {"sync": "tab:red", "async": "tab:blue"}
OTHER_COLORS = ["tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
# run B of a comparison: a colour next to run A's for the same series, never one A uses
PARTNER_COLORS = {
    "tab:red": "tab:orange",
    "tab:blue": "tab:cyan",
    "tab:green": "tab:olive",
    "tab:purple": "tab:pink",
    "tab:orange": "tab:brown",
    "tab:brown": "tab:gray",
    "tab:pink": "tab:purple",
    "tab:olive": "tab:green",
    "tab:cyan": "tab:blue",
}
ALL_COLORS = list(FIXED_COLORS.values()) + OTHER_COLORS + ["tab:gray", "black"]


@dataclass(frozen=True)
class RunStyle:
    """How the series of one run are drawn; in a comparison each run has its own."""

    linestyle: str = "-"
    marker: str = "o"
    hollow: bool = False  # marker drawn as an outline: a point of the other run shows through


# run A, run B of a comparison
RUN_STYLES = (RunStyle("-", "o", False), RunStyle("--", "s", True))


@dataclass
class Series:
    name: str  # legend name, e.g. "sync" or "<run label>: sync"
    base: str  # the step label
    points: list[StepMetrics]  # sorted by rate
    style: RunStyle = field(default_factory=RunStyle)
    color: str | None = None  # None: by the step label (sync red, async blue, ...)
    unreadable: list[UnreadableStep] = field(default_factory=list)  # its steps that could not be read

    @property
    def linestyle(self) -> str:
        return self.style.linestyle

    @property
    def modes(self) -> set[str]:
        return {p.mode for p in self.points} | {u.mode for u in self.unreadable if u.mode}

    @property
    def is_async(self) -> bool:
        return self.modes == {"async"}


def color_map(labels: Sequence[str]) -> dict[str, str]:
    colors: dict[str, str] = {}
    others = iter(OTHER_COLORS * 4)
    for label in labels:
        if label in colors:
            continue
        colors[label] = FIXED_COLORS.get(label) or next(others)
    return colors


def series_colors(series: Sequence[Series]) -> dict[str, str]:
    """The colour of each series, by name: its own, else its step label's."""
    by_label = color_map([s.base for s in series])
    return {s.name: s.color or by_label[s.base] for s in series}


def give_runs_colors(run_a: Sequence[Series], run_b: Sequence[Series]) -> None:
    """Every series of a comparison gets a colour of its own: run A's by step label, run B's
    the partner of A's colour for the same label, so that the pairs read alike."""
    a_colors = color_map([s.base for s in run_a] + [s.base for s in run_b])
    used = set()
    for s in run_a:
        s.color = a_colors[s.base]
        used.add(s.color)
    for s in run_b:
        preferred = PARTNER_COLORS.get(a_colors[s.base], "")
        free = [c for c in [preferred, *ALL_COLORS] if c and c not in used]
        s.color = free[0] if free else a_colors[s.base]
        used.add(s.color)


def build_series(
    metrics: Sequence[StepMetrics],
    prefix: str | None = None,
    style: RunStyle | None = None,
    unreadable: Sequence[UnreadableStep] = (),
) -> list[Series]:
    """One series per step label, in order of first appearance (sync before async if both);
    an unreadable step joins the series its label names."""
    by_label: dict[str, list[StepMetrics]] = {}
    for m in metrics:
        by_label.setdefault(m.label, []).append(m)
    lost: dict[str, list[UnreadableStep]] = {}
    for u in unreadable:
        if u.label:
            lost.setdefault(u.label, []).append(u)
            by_label.setdefault(u.label, [])
    order = [lb for lb in FIXED_COLORS if lb in by_label] + [lb for lb in by_label if lb not in FIXED_COLORS]
    return [
        Series(
            name=f"{prefix}: {label}" if prefix else label,
            base=label,
            points=sorted(by_label[label], key=lambda m: (m.rate, m.index or 0)),
            style=style or RunStyle(),
            unreadable=lost.get(label, []),
        )
        for label in order
    ]
