"""The bar chart of a capacity suite: one bar per subject, its length the subject's capacity_rps
in capacity.json (the label at its end is the table's own text), so every bar can be traced to
a row. An invalid result (the load generator limited it) is a hatched outline up to the rate it
failed at; a search that never failed ends in an arrow (the capacity is at least the bar);
a subject with no passing rate or not run has no bar, only its text. Agg backend only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from .capacity_table import capacity_text  # noqa: E402
from .series import FIXED_COLORS  # noqa: E402

MODE_COLORS = {**FIXED_COLORS, "noop": "tab:green"}
INVALID_COLOR = "0.45"


def bar_length(row: dict[str, Any]) -> float:
    """What a row's bar shows: the capacity, or for an invalid result the rate it failed at."""
    if row.get("valid") is False:
        return float(row.get("first_failure_rps") or 0)
    return float(row.get("capacity_rps") or 0)


def write_capacity_chart(
    rows: Sequence[dict[str, Any]], slo: dict[str, Any], path: Path, subtitle: str = "", dpi: int = 110
) -> Path | None:
    """Draw the chart into `path`; None when no row has anything to draw."""
    if not rows:
        return None
    lengths = [bar_length(r) for r in rows]
    top = max(lengths, default=0) or 1.0
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * len(rows)))
    y = list(range(len(rows)))[::-1]  # the suite's first subject at the top
    for yi, row, length in zip(y, rows, lengths, strict=True):
        invalid = row.get("valid") is False
        color = INVALID_COLOR if invalid else MODE_COLORS.get(row.get("mode"), "tab:gray")
        if length > 0:
            ax.barh(
                yi,
                length,
                color="none" if invalid else color,
                edgecolor=color,
                hatch="//" if invalid else None,
                height=0.65,
            )
        if row.get("no_failure") and not invalid and length > 0:
            ax.annotate(
                "",
                xy=(length + 0.06 * top, yi),
                xytext=(length, yi),
                arrowprops={"arrowstyle": "->", "color": color, "lw": 1.5},
            )
        text = capacity_text(row)
        if row.get("bottleneck"):
            text += f"; bottleneck: {row['bottleneck']}"
        after = 0.08 if row.get("no_failure") and not invalid else 0.01  # past the arrow
        ax.text(length + after * top, yi, " " + text, va="center", fontsize=8.5)
    ax.set_yticks(y, [r["subject"] for r in rows])
    ax.set_xlim(0, top * 1.9)  # room for the text right of the longest bar
    ax.set_xlabel("capacity (requests/s): the highest offered rate within the SLO")
    ax.grid(axis="x", alpha=0.3)
    title = (
        f"Capacity per subject: p95 <= {slo.get('p95_ms')} ms (sync: above the work), "
        f"errors <= {slo.get('max_error_pct')} %, 0 dropped"
    )
    ax.set_title(title + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    modes = [m for m in MODE_COLORS if any(r.get("mode") == m for r in rows)]
    handles = [Patch(color=MODE_COLORS[m], label=m) for m in modes]
    if any(r.get("valid") is False for r in rows):
        handles.append(
            Patch(facecolor="none", edgecolor=INVALID_COLOR, hatch="//", label="invalid (loadgen)")
        )
    ax.set_ylim(-0.6, len(rows) - 0.4)
    below = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.14), "ncol": len(handles), "frameon": False}
    ax.legend(handles=handles, fontsize=8, **below)
    source = "bars and labels: capacity_rps and the rows of capacity.json"
    ax.annotate(source, (0, 0), xycoords="axes fraction", xytext=(0, -62), textcoords="offset points",
                fontsize=7, color="0.4")  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
