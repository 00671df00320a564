"""What `python -m offload_lab.analysis` prints: the key figures of each point in a table that fits a
terminal. The full tables are in summary.md and index.html."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from .fmt import MISSING, NA, fmt_int, fmt_ms, fmt_num, fmt_pct, fmt_rate
from .series import Series
from .tables import PointRow, point_rows

TERMINAL_WIDTH = 100
GAP = "  "
LIMITED_MARK = "*"  # after the achieved rate of a point the load generator limited


def _fit(text: str, width: int) -> str:
    """Cut a name to `width` in the middle, keeping its end (`<run label>: <step label>`)."""
    if len(text) <= width:
        return text
    tail = text[text.rfind(": ") :] if ": " in text else ""
    tail = tail[-(width // 2) :] if tail else ""
    return text[: max(1, width - 1 - len(tail))] + "…" + tail


def _row(r: PointRow, show_mode: bool, show_n: bool) -> list[str]:
    lead = [r.series.name] + ([r.mode] if show_mode else []) + [fmt_rate(r.rate)]
    lead += [r.n_text] if show_n else []
    p = r.point
    if p is None:
        return lead + [MISSING] * 5
    achieved = fmt_num(p.throughput) + (LIMITED_MARK if p.loadgen_limited else " ")
    lost = "" if p.mode != "async" else fmt_int(p.lost)  # the ledger's; n/a without one
    if p.drained is False:
        lost += " (never drained)"
    return lead + [achieved, fmt_ms(p.lat_p95), fmt_pct(p.error_rate), fmt_pct(p.drop_rate), lost or ""]


def render(headers: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int, width: int) -> str:
    """Columns as wide as their widest cell; the first column is cut so that a line is never
    wider than `width`; the first `text_columns` left-aligned, the rest right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    others = sum(widths[1:]) + len(GAP) * (len(widths) - 1)
    widths[0] = max(8, min(widths[0], width - others))

    def line(cells: Sequence[str]) -> str:
        out = [
            _fit(str(c), w).ljust(w) if i < text_columns else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return GAP.join(out).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def terminal_summary(
    series: Sequence[Series], runs: Sequence[tuple[str, str]] = (), width: int = TERMINAL_WIDTH
) -> str:
    """The runs (in a comparison), then per point: achieved rate, p95, errors, drops, lost."""
    # the same series of both runs next to each other
    base_order = {base: i for i, base in enumerate(dict.fromkeys(s.base for s in series))}
    rows = sorted(point_rows(series), key=lambda r: (r.rate, base_order[r.series.base]))
    show_mode = any(r.series.base != r.mode for r in rows)
    counts = {r.point.n for r in rows if r.point}
    repeats = max(counts, default=1)
    show_n = repeats > 1 or any(r.unreadable for r in rows)
    headers = ["series"] + (["mode"] if show_mode else []) + ["rate/s"] + (["n"] if show_n else [])
    headers += ["achieved/s", "p95 ms", "errors", "dropped", "lost"]
    text_columns = 2 if show_mode else 1
    lines = [textwrap.fill(f"{side} = {text}", width, subsequent_indent="    ") for side, text in runs]
    lines.append(render(headers, [_row(r, show_mode, show_n) for r in rows], text_columns, width))
    notes = []
    if repeats > 1:
        n = f"{repeats}" if len(counts) == 1 else "n"
        notes.append(f"each figure is the median of a point's {n} repeats")
    if any(r.point and r.point.loadgen_limited for r in rows):
        notes.append(f"{LIMITED_MARK} the load generator, not the server, was the limit")
    if any(r.point and r.point.mode == "async" and r.point.lost is None for r in rows):
        notes.append(f"lost {NA}: no ledger for that step, so no loss is counted (see summary.md)")
    if any(r.point and r.point.lat_p95 is None for r in rows):
        notes.append(f"{NA}: not in that step's data")
    lines += [textwrap.fill(n, width) for n in notes]
    return "\n".join(lines) + "\n"
