"""A table as data: rendered as markdown (summary.md, the terminal) and as HTML (index.html)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    right_from: int = 1  # columns from this index on are right-aligned (numbers)
    notes: list[str] = field(default_factory=list)  # lines shown under the table


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> str:
    def esc(cell: str) -> str:
        return str(cell).replace("|", "\\|")

    align = ["---" if i < right_from else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(table: Table) -> str:
    return md_table(table.headers, table.rows, table.right_from)
