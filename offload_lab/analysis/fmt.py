"""How figures are written in tables: one place for units, rounding and min-max ranges."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

from .metrics import StepMetrics

NA = "n/a"  # the figure is unknown for this step (the warnings say why)
MISSING = "missing"  # the step itself could not be read


def fmt_ms(v: float | None) -> str:
    if v is None:
        return NA
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_num(v: float | None, digits: int = 1) -> str:
    if v is None:
        return NA
    if float(v).is_integer() and digits == 0:
        return f"{int(v):,}"
    return f"{v:,.{digits}f}"


def fmt_int(v: float | None) -> str:
    return NA if v is None else f"{int(round(v)):,}"


def fmt_pct(fraction: float | None) -> str:
    return NA if fraction is None else f"{fraction * 100:.1f}%"


def fmt_rate(r: float) -> str:
    return f"{r:g}"


def ranged(p: StepMetrics, attr: str, fmt: Callable[[float | None], str]) -> str:
    """`median [min-max]` for a point with repeats, the plain value for a single step."""
    text = fmt(getattr(p, attr))
    spread = p.spread(attr)
    if spread is None or text == NA:
        return text
    lo, hi = fmt(spread[0]), fmt(spread[1])
    return text if lo == hi else f"{text} [{lo}-{hi}]"


def spread_text(p: StepMetrics, attr: str, fmt: Callable[[float | None], str]) -> str:
    """max - min of a figure over a point's repeats ("" for a single step)."""
    spread = p.spread(attr)
    return "" if spread is None else fmt(spread[1] - spread[0])


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """median [min-max] of the repeats, or the one value."""
    if not values:
        return "n/a"
    median = fmt.format(statistics.median(values))
    if len(values) == 1 or min(values) == max(values):
        return median
    return f"{median} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def replace_block(text: str, begin: str, end: str, block: str) -> str:
    """`text` with what stands between the marker lines `begin` and `end` replaced by `block`
    (a page's generated part); ValueError when the markers are not there."""
    head, found, rest = text.partition(begin)
    if not found or end not in rest:
        raise ValueError(f"the page has no block {begin} ... {end}")
    return f"{head}{begin}\n{block}\n{end}{rest.partition(end)[2]}"
