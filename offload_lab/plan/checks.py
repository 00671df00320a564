"""Small typed checks for specs: each returns the value or appends a problem naming the key and
returns None, so that every problem of a spec is reported at once."""

from __future__ import annotations

from typing import Any


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def in_range(problems: list[str], key: str, value: Any, lo: float, hi: float, integer: bool):
    if not (is_int(value) if integer else is_number(value)):
        problems.append(f"{key}: must be {'an integer' if integer else 'a number'}, got {value!r}")
        return None
    if not lo <= value <= hi:
        problems.append(f"{key}: must be between {lo} and {hi}, got {value}")
        return None
    return value


def int_in(problems: list[str], key: str, value: Any, lo: int, hi: int) -> int | None:
    return in_range(problems, key, value, lo, hi, integer=True)


def num_in(problems: list[str], key: str, value: Any, lo: float, hi: float) -> float | None:
    return in_range(problems, key, value, lo, hi, integer=False)
