"""dict <-> record: a record as the JSON object its file holds, and a parsed file as its record,
checked against the shapes its kind has had (RecordError naming what is wrong)."""

from __future__ import annotations

import types
from dataclasses import fields, is_dataclass
from functools import cache
from typing import Any, get_args, get_origin, get_type_hints

from .shapes import Shape

OMITTED_WHEN_NONE = {"omitted_when_none": True}  # field metadata: the key is left out when None


class RecordError(ValueError):
    """A file that is not a record of its kind; the message says why."""


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def to_dict(record: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if value is None and f.metadata.get("omitted_when_none"):
            continue
        out[f.name] = to_dict(value) if is_dataclass(value) else value
    return out


def _always_written(cls: type, prefix: str = "") -> set[str]:
    """The keys every file of the current shape has (a nested record's as `name.key`)."""
    hints = _hints(cls)
    keys = set()
    for f in fields(cls):
        if f.metadata.get("omitted_when_none"):
            continue
        keys.add(prefix + f.name)
        if is_dataclass(hints[f.name]):
            keys |= _always_written(hints[f.name], f"{prefix}{f.name}.")
    return keys


def _present(cls: type, data: dict[str, Any], prefix: str = "") -> set[str]:
    hints = _hints(cls)
    keys = {prefix + k for k in data}
    for f in fields(cls):
        if is_dataclass(hints[f.name]) and f.name in data:
            if not isinstance(data[f.name], dict):
                raise RecordError(f"{prefix}{f.name}: not a JSON object")
            keys |= _present(hints[f.name], data[f.name], f"{prefix}{f.name}.")
    return keys


def shape_of(cls: type, data: dict[str, Any], shapes: tuple[Shape, ...]) -> Shape:
    """The shape a file's keys match exactly; RecordError naming the keys when none does."""
    present = _present(cls, data)
    lacking = _always_written(cls) - present
    for shape in shapes:
        if lacking == shape.lacks:
            version = data.get("schema_version")
            if version not in shape.schema_versions:
                known = ", ".join(map(str, shape.schema_versions))
                raise RecordError(f"schema_version {version!r}: this reader knows {known}")
            return shape
    closest = max((s for s in shapes if s.lacks <= lacking), key=lambda s: len(s.lacks))
    raise RecordError(
        f"lacks {', '.join(sorted(lacking - closest.lacks))}, which its closest known shape "
        f"({closest.name!r}, offload_lab/records/shapes.py) has"
    )


def from_dict(cls: type, data: Any, shapes: tuple[Shape, ...]) -> Any:
    if not isinstance(data, dict):
        raise RecordError(f"not a JSON object (a {type(data).__name__})")
    shape_of(cls, data, shapes)
    return _build(cls, data, "")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = _hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(prefix + k for k in data if k not in names)
    if unknown:
        raise RecordError(f"unknown key(s) {', '.join(unknown)}")
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if is_dataclass(hint):
            value = _build(hint, value, f"{prefix}{name}.")
        elif not _conforms(value, hint):
            raise RecordError(f"{prefix}{name}: {value!r} is not {_type_text(hint)}")
        values[name] = value
    return cls(**values)


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a JSON value has the type of a field (its containers' items are not looked into)."""
    if hint is Any:
        return True
    if isinstance(hint, types.UnionType):
        return any(_conforms(value, h) for h in get_args(hint))
    if hint is type(None):
        return value is None
    if isinstance(value, bool):
        return hint is bool
    if hint is float:
        return isinstance(value, int | float)
    return isinstance(value, get_origin(hint) or hint)


def _type_text(hint: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number"}
    names |= {bool: "true or false", type(None): "null"}
    parts = get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return " or ".join(names.get(get_origin(p) or p, str(p)) for p in parts)
