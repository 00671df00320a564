"""The kinds of value a core setting takes (offload_lab.plan.core_spec), each with its check: a
value from a spec (YAML: a number, a list) or from the command line (text) becomes the text the
core reads from its environment, or a problem naming the key is appended and None returned.

- IntRange: an integer lo..hi (`PREFETCH: 200`, `"200"`).
- Fraction: a number 0..1 (`TRANSIENT_FAIL_RATE: 0.01`, `"0.01"`), written as Python writes a float.
- Delays: ascending integers, each lo..hi, at most `max_count` of them (`RETRY_DELAYS_MS:
  [1000, 4000]`, `"1000,4000"`, one integer); an empty list or text is no delay at all.

The ranges are the core's own (core-go/internal/config, Validate): a value the core
would refuse is refused here, before any load."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .checks import in_range, is_int, is_number


@dataclass(frozen=True)
class IntRange:
    lo: int
    hi: int

    def check(self, problems: list[str], key: str, value: Any) -> str | None:
        n = in_range(problems, key, _maybe_int(value), self.lo, self.hi, integer=True)
        return None if n is None else str(n)


@dataclass(frozen=True)
class Fraction:
    lo: int = 0
    hi: int = 1

    def check(self, problems: list[str], key: str, value: Any) -> str | None:
        x = _maybe_number(value)
        if is_number(x) and not math.isfinite(x):
            problems.append(f"{key}: must be a number between {self.lo:g} and {self.hi:g}, got {value!r}")
            return None
        checked = in_range(problems, key, x, self.lo, self.hi, integer=False)
        return None if checked is None else repr(float(checked))


@dataclass(frozen=True)
class Delays:
    lo: int
    hi: int
    max_count: int

    def check(self, problems: list[str], key: str, value: Any) -> str | None:
        items = self.items(value)
        if items is None:
            problems.append(
                f"{key}: must be a list of integers (or a comma-separated text, empty for none), "
                f"got {value!r}"
            )
            return None
        if len(items) > self.max_count:
            problems.append(f"{key}: at most {self.max_count} delays, got {len(items)}")
            return None
        delays = []
        for i, item in enumerate(items):
            n = in_range(problems, f"{key}[{i}]", _maybe_int(item), self.lo, self.hi, integer=True)
            if n is None:
                return None
            delays.append(n)
        if any(b <= a for a, b in zip(delays, delays[1:], strict=False)):
            problems.append(f"{key}: must be strictly ascending (a backoff), got {delays}")
            return None
        return ",".join(map(str, delays))

    @staticmethod
    def items(value: Any) -> list[Any] | None:
        """The list a value names (not yet checked), None when it is no list at all."""
        if value is None:
            return []
        if is_int(value):
            return [value]
        if isinstance(value, str):
            return [p.strip() for p in value.split(",")] if value.strip() else []
        if isinstance(value, list | tuple):
            return list(value)
        return None

    @staticmethod
    def parse(text: str | None) -> list[int]:
        """An env text as the core reads it ("1000,4000,16000"; "" = none); unreadable parts skipped."""
        out = []
        for part in (text or "").split(","):
            try:
                out.append(int(part.strip()))
            except ValueError:
                continue
        return out


Kind = IntRange | Fraction | Delays


def _maybe_int(v: Any) -> Any:
    """Values from the command line are strings ("100"); a YAML number is already an int."""
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            return v
    return v


def _maybe_number(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return v
    return v
