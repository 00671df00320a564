"""The capacity table of a suite run (`fab capacity --suite`): one row per subject, built only
from that subject's folder (its capacity.json and run.json), so the table in the suite's
capacity.json and capacity.md can always be rebuilt from the raw results and checked.

A suite run folder:
    capacity.json   {"kind": "capacity-suite", "suite": {...}, "subjects": [row, ...], ...}
    capacity.md     the table as Markdown (table_markdown)
    suite.yml       the suite file as run
    <subject>/      one `fab capacity` run: run.json, steps/, samples/, capacity.json, capacity.md
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from ..records import CAPACITY_FILE, RecordError, RunRecord, is_suite_table, read_run
from .table_model import Table, md_table

NOOP_MODE = "noop"
# the gateway settings a row shows: what tells the subjects apart
SHOWN_SETTINGS = ("PUBLISHER", "PUBLISH_CONFIRM", "GUNICORN_WORKER_CLASS", "GUNICORN_WORKERS")


def is_suite_folder(path: Path) -> bool:
    return is_suite_table(_read(Path(path) / CAPACITY_FILE))


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_run(folder: Path) -> RunRecord | None:
    try:
        return read_run(folder)
    except RecordError:
        return None


def subject_row(suite_dir: Path, name: str) -> dict[str, Any]:
    """The row of one subject, from <suite_dir>/<name>/capacity.json and run.json."""
    folder = Path(suite_dir) / name
    result, run = _read(folder / CAPACITY_FILE), _read_run(folder)
    row: dict[str, Any] = {"subject": name, "folder": name, "report": f"{name}/capacity.md"}
    if run is None:
        return {**row, "status": "not run", "mode": None, "capacity_rps": None, "valid": None}
    modes = run.spec.get("modes") or [None]
    row.update(
        mode=modes[0],
        settings=_settings_text(run.spec),
        status=run.status,
    )
    if not isinstance(result, dict):
        return {**row, "capacity_rps": None, "valid": None, "status": f"{row['status']}, no capacity.json"}
    failure = result.get("first_failure") or {}
    named = result.get("bottleneck") or {}  # runs before it was recorded: the first failure's
    spread = result.get("spread") or {}  # runs from before boundary repeats: none
    probes = result.get("probes") or []
    at_capacity = [p for p in probes if p.get("passed") and p.get("rate") == result.get("capacity_rps")]
    p95s = [v for p in at_capacity if isinstance(v := (p.get("figures") or {}).get("p95_ms"), int | float)]
    row.update(
        capacity_rps=result.get("capacity_rps"),
        valid=result.get("valid"),
        no_failure=not failure,
        first_failure_rps=failure.get("rate"),
        failure_reasons=failure.get("reasons") or [],
        bottleneck=named.get("name", failure.get("bottleneck")),
        bottleneck_rps=named.get("rate", failure.get("rate")),
        evidence=named.get("evidence", failure.get("evidence")) or [],
        p95_at_capacity_ms=statistics.median(p95s) if p95s else None,
        p95_at_capacity_range_ms=[min(p95s), max(p95s)] if len(p95s) > 1 else None,
        boundary_repeats=spread.get("boundary_repeats"),
        repeated=bool(spread.get("repeated")),
        flipped_rates=spread.get("flipped_rates") or [],
        highest_passing_rps=spread.get("highest_passing_rps", result.get("capacity_rps")),
        capacity_probes=sum(1 for p in probes if p.get("rate") == result.get("capacity_rps")),
        failed_below=sorted(
            {
                p["rate"]
                for p in probes
                if not p.get("passed") and p.get("rate", 0) < (result.get("capacity_rps") or 0)
            }
        ),
        probes=len(probes),
        stopped=result.get("stopped"),
    )
    return row


def _settings_text(spec: dict[str, Any]) -> str:
    gateway = spec.get("gateway") or {}
    parts = [f"{k}={gateway[k]}" for k in SHOWN_SETTINGS if k in gateway]
    parts += [f"{k}={v}" for k, v in sorted((spec.get("core") or {}).items())]
    return " ".join(parts)


def build_table(suite_dir: Path, names: list[str]) -> dict[str, Any]:
    """Every subject's row, in the suite's order, and each capacity as a share of the no-op's
    (the gateway's own ceiling: how much of it a path keeps)."""
    rows = [subject_row(suite_dir, n) for n in names]
    noop = next(
        (r for r in rows if r.get("mode") == NOOP_MODE and r.get("valid") and r.get("capacity_rps")), None
    )
    noop_rps = noop["capacity_rps"] if noop else None
    for r in rows:
        rps = r.get("capacity_rps")
        r["share_of_noop"] = (
            round(rps / noop_rps, 3) if noop_rps and rps is not None and r.get("valid") else None
        )
    rank(rows)
    return {"noop_capacity_rps": noop_rps, "subjects": rows}


def rank(rows: list[dict[str, Any]]) -> None:
    """Each valid capacity's place, the highest first (`rank`), and the subjects next to it in that
    order whose capacities its spread does not tell apart (`within_spread_of`): the lower one
    passed, in some repeat, a rate at or above the higher one's capacity."""
    ranked = [r for r in rows if r.get("valid") and r.get("capacity_rps") is not None]
    ranked.sort(key=lambda r: -r["capacity_rps"])
    for r in rows:
        r["rank"] = None
        r["within_spread_of"] = []
    for place, r in enumerate(ranked, start=1):
        r["rank"] = place
    for higher, lower in zip(ranked, ranked[1:], strict=False):
        if (lower.get("highest_passing_rps") or lower["capacity_rps"]) >= higher["capacity_rps"]:
            higher["within_spread_of"].append(lower["subject"])
            lower["within_spread_of"].append(higher["subject"])


def capacity_text(row: dict[str, Any]) -> str:
    rps = row.get("capacity_rps")
    if row.get("valid") is False:
        return "INVALID (the load generator limited it)"
    if row.get("status") == "not run" or "capacity_rps" not in row or row.get("valid") is None:
        return str(row.get("status") or "not run")
    if rps is None:
        return f"none (below {row['first_failure_rps']:,}/s)" if row.get("first_failure_rps") else "none"
    return f"{rps:,}/s" + (" or more (no probe failed)" if row.get("no_failure") else "")


def spread_text(row: dict[str, Any]) -> str:
    """The capacity's spread: the highest rate that passed in any repeat and where the verdict
    flipped, that it never did, or that no rate was repeated."""
    if row.get("capacity_rps") is None or not row.get("valid"):
        return ""
    if not row.get("repeated"):
        return "unknown (not repeated)"
    repeats = f"{row.get('boundary_repeats')} repeats"
    flipped = row.get("flipped_rates") or []
    text = f"none ({repeats})"
    if flipped:
        at = ", ".join(f"{r:,}/s" for r in flipped)
        text = f"up to {row['highest_passing_rps']:,}/s (flipped at {at}; {repeats})"
    return text + _caveats(row)


def _caveats(row: dict[str, Any]) -> str:
    """What makes a repeated capacity less sure than its repeats setting says: the capacity's own
    rate probed fewer times (the repeat budget ran out), or a lower rate that failed once."""
    out = []
    probed, wanted = row.get("capacity_probes"), row.get("boundary_repeats")
    if isinstance(probed, int) and isinstance(wanted, int) and 0 < probed < wanted:
        out.append(f"the capacity itself probed {probed} of {wanted} times")
    if row.get("failed_below"):
        out.append("a probe failed below it, at " + ", ".join(f"{r:,}/s" for r in row["failed_below"]))
    return "".join(f"; {c}" for c in out)


def rank_text(row: dict[str, Any]) -> str:
    if row.get("rank") is None:
        return ""
    near = row.get("within_spread_of") or []
    return f"{row['rank']}" + (f", within spread of {', '.join(near)}" if near else "")


def _ranged(median: Any, extremes: list[float] | None) -> str:
    """median [min-max] over the repeats, or the one value when they agree (or there is one)."""
    low, high = (_num(v) for v in extremes or [None, None])
    return _num(median) if low == high else f"{_num(median)} [{low}-{high}]"


def _bottleneck_cell(r: dict[str, Any]) -> str:
    if r.get("first_failure_rps") is None:
        return ""
    at = r.get("bottleneck_rps")
    named = r.get("bottleneck") or "not identified"
    return named + (f" (at {at:,}/s)" if at is not None and at != r["first_failure_rps"] else "")


def _num(v: Any, digits: int = 1) -> str:
    return "n/a" if not isinstance(v, int | float) else f"{v:,.{digits}f}"


HEADERS = [
    "subject",
    "mode",
    "settings",
    "capacity",
    "spread",
    "rank",
    "of no-op",
    "p95 at capacity (ms)",
    "first failure",
    "why it failed",
    "bottleneck",
    "evidence",
    "probes",
    "folder",
]


def capacity_table(table: dict[str, Any], links: bool = True, link_base: str = ".") -> Table:
    """The rows as a table model (offload_lab.analysis.table_model): Markdown with a link to each subject's
    capacity.md (relative to the suite folder, reached from the document by `link_base`), or
    plain text for HTML."""
    rows = []
    for r in table["subjects"]:
        share = r.get("share_of_noop")
        failure = r.get("first_failure_rps")
        target = r["report"] if link_base in ("", ".") else f"{link_base}/{r['report']}"
        folder = f"[{r['folder']}/]({target})" if links else f"{r['folder']}/"
        rows.append(
            [
                r["subject"],
                r.get("mode") or "",
                r.get("settings") or "",
                capacity_text(r),
                spread_text(r),
                rank_text(r),
                "" if share is None else f"{share:.0%}",
                _ranged(r.get("p95_at_capacity_ms"), r.get("p95_at_capacity_range_ms")),
                "none" if failure is None else f"{failure:,}/s",
                "; ".join(r.get("failure_reasons") or []),
                _bottleneck_cell(r),
                "; ".join(r.get("evidence") or []),
                str(r.get("probes", "")),
                folder,
            ]
        )
    return Table("Capacity per subject", HEADERS, [[c.replace("\n", " ") for c in row] for row in rows])


def table_intro(suite: dict[str, Any], table: dict[str, Any]) -> list[str]:
    """What the table holds: the SLO, the search, the no-op reference."""
    slo = suite.get("slo") or {}
    out = [
        f"The highest offered rate each subject sustained with p95 <= {slo.get('p95_ms')} ms "
        "(sync: above its work time), "
        f"errors <= {slo.get('max_error_pct')} %, nothing dropped and k6 never short of VUs; "
        "found by doubling from the subject's start rate, then bisecting to 5 % "
        "(offload_lab/capacity/search.py). The bottleneck is what the first failing probe's evidence names "
        "(when it names nothing, the lowest failing rate whose evidence does: 'at N/s'); "
        "a probe the load generator limited makes the result invalid.",
        "With boundary repeats the highest passing and the lowest failing rate are probed again, "
        "interleaved, and the capacity is a rate that passed in every repeat; 'spread' is the "
        "highest rate that passed in some repeat and where the verdict flipped (unknown: no rate "
        "was probed twice), 'p95 at capacity' the median [min-max] of its repeats. 'rank' orders "
        "the capacities; 'within spread of X': X is next in that order and the lower of the two "
        "passed, in some repeat, the higher one's capacity: their order may be noise.",
    ]
    if table.get("noop_capacity_rps"):
        out.append(
            f"No-op (POST /noop, the gateway without the publish): {table['noop_capacity_rps']:,}/s; "
            "'of no-op' is each capacity as a share of it."
        )
    return out


def table_markdown(suite: dict[str, Any], table: dict[str, Any]) -> str:
    """The suite's capacity.md: what was held, then one row per subject."""
    out = [f"# Capacity: suite {suite.get('name')}", ""]
    for line in table_intro(suite, table):
        out += [line, ""]
    t = capacity_table(table)
    out.append(md_table(t.headers, t.rows, right_from=len(HEADERS)))
    return "\n".join(out) + "\n"
