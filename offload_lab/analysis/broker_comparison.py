"""The broker comparison (scripts/compare-brokers.sh): one folder per Debian release, each with
the brokers spec's run, its capacity runs and its cluster run, read into one table per question:
what RabbitMQ 4.0 changes against 3.10 for confirmed publishes (latency, drops and the broker's
CPU at the seed's rates; capacity), for the ledger (lost per task id) and for quorum queues.

    python -m offload_lab.analysis.broker_comparison OUT

writes OUT/comparison.json and OUT/comparison.md (the block `brokers` of
offload_lab.analysis.generated_blocks, in docs/publications/brokers.md). Every figure is a median [min-max]
over the repeats; two releases differ on a figure only when their ranges do not overlap.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..records import CAPACITY_FILE, RUN_FILE
from .fmt import spread
from .load import LoadError, load_run
from .metrics import compute_metrics
from .run_header import broker_line

JSON_FILE = "comparison.json"
TABLE_FILE = "comparison.md"
BROKERS_RUN, CLUSTER_RUN, CAPACITY_PREFIX = "brokers", "cluster", "capacity-r"
FIGURES = ("avg_ms", "p95_ms", "p99_ms", "dropped_pct", "broker_cpu_pct")


def _broker_cpu(hosts: dict[str, Any] | None) -> float | None:
    values = [h.get("cpu_pct") for h in (hosts or {}).values() if h.get("group") == "broker"]
    values = [v for v in values if isinstance(v, (int, float))]
    return round(sum(values), 1) if values else None


def _step_row(step, run_dir: Path) -> dict[str, Any]:
    m = compute_metrics(step, run_dir)
    ledger = step.ledger or {}
    return {
        "file": step.file,
        "label": step.label,
        "mode": step.mode,
        "rate": step.rate,
        "repeat": step.repeat,
        "avg_ms": m.lat_avg,
        "p95_ms": m.lat_p95,
        "p99_ms": m.lat_p99,
        "dropped_pct": None if m.drop_rate is None else round(100 * m.drop_rate, 3),
        "broker_cpu_pct": _broker_cpu(step.hosts),
        "lost": ledger.get("lost"),
        "broker": broker_line((step.broker or {}).get("facts")),
    }


def load_release(folder: Path) -> dict[str, Any]:
    """One release's runs: the brokers spec's steps, the capacities, the cluster's steps."""
    brokers = load_run(folder / BROKERS_RUN)
    steps = [_step_row(s, brokers.path) for s in brokers.steps]
    facts = (brokers.steps[0].broker or {}).get("facts") if brokers.steps else None
    capacities = []
    for cap in sorted(folder.glob(f"{CAPACITY_PREFIX}*/{CAPACITY_FILE}")):
        data = json.loads(cap.read_text())
        capacities.append({"run": cap.parent.name, "capacity_rps": data.get("capacity_rps"),
                           "headline": data.get("headline")})  # fmt: skip
    cluster, cluster_commit = None, None
    if (folder / CLUSTER_RUN / RUN_FILE).exists():
        run = load_run(folder / CLUSTER_RUN)
        cluster = [_step_row(s, run.path) for s in run.steps]
        cluster_commit = (run.meta.git_commit, run.meta.git_dirty)
    return {
        "release": folder.name,
        "rabbitmq_version": (facts or {}).get("rabbitmq_version"),
        "broker": broker_line(facts),
        "git_commit": brokers.meta.git_commit,
        "git_dirty": brokers.meta.git_dirty,
        "steps": steps,
        "capacity": capacities,
        "cluster": cluster,
        "cluster_git_commit": cluster_commit[0] if cluster_commit else None,
        "cluster_git_dirty": cluster_commit[1] if cluster_commit else None,
    }


def load_comparison(out: Path) -> list[dict[str, Any]]:
    """Every release folder of OUT, the newest RabbitMQ first."""
    releases = [load_release(p.parent.parent) for p in sorted(out.glob(f"*/{BROKERS_RUN}/{RUN_FILE}"))]
    if not releases:
        raise ValueError(f"{out}: no <release>/{BROKERS_RUN}/{RUN_FILE}")

    def version_key(r: dict[str, Any]) -> tuple[int, ...]:
        parts = str(r["rabbitmq_version"] or "0").split(".")
        return tuple(int(p) if p.isdigit() else 0 for p in parts)

    return sorted(releases, key=version_key, reverse=True)


def figure_values(release: dict[str, Any], rate: float, figure: str) -> list[float]:
    rows = [s for s in release["steps"] if s["rate"] == rate and s["mode"] == "async"]
    return [s[figure] for s in rows if s[figure] is not None]


def differs(a: Sequence[float], b: Sequence[float]) -> bool:
    """Two sets of repeats differ only when their ranges do not overlap."""
    return bool(a and b) and (max(a) < min(b) or max(b) < min(a))


def ratio_text(new: Sequence[float], old: Sequence[float]) -> str:
    """The ratio of the medians, and whether the ranges overlap (then it is no difference)."""
    if not new or not old or statistics.median(old) == 0:
        return "n/a"
    text = f"{statistics.median(new) / statistics.median(old):.2f}"
    return text if differs(new, old) else f"{text} (ranges overlap)"


def rates(releases: list[dict[str, Any]]) -> list[float]:
    return sorted({s["rate"] for r in releases for s in r["steps"] if s["mode"] == "async"})


def _label(release: dict[str, Any]) -> str:
    return f"{release['rabbitmq_version'] or '?'} ({release['release']})"


def headline_table(releases: list[dict[str, Any]], figure: str = "p95_ms", fmt: str = "{:.1f}") -> str:
    """One row per rate: each release's figure as median [min-max], then new / old."""
    new, old = releases[0], releases[-1]
    head = ["rate (req/s)", *(f"{figure} {_label(r)}" for r in releases), f"{_label(new)} / {_label(old)}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rate in rates(releases):
        cells = [spread(figure_values(r, rate, figure), fmt) for r in releases]
        ratio = ratio_text(figure_values(new, rate, figure), figure_values(old, rate, figure))
        lines.append(f"| {rate:g} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


def capacity_row(releases: list[dict[str, Any]]) -> str:
    values = [[c["capacity_rps"] for c in r["capacity"] if c["capacity_rps"] is not None] for r in releases]
    cells = [f"{_label(r)}: {spread(v, '{:,.0f}')}/s" if v else f"{_label(r)}: not measured"
             for r, v in zip(releases, values, strict=True)]  # fmt: skip
    return "; ".join(cells) + f"; ratio {ratio_text(values[0], values[-1])}"


def lost_text(release: dict[str, Any], key: str = "steps") -> str:
    rows = [s for s in release[key] or [] if s["mode"] == "async"]
    counted = [s["lost"] for s in rows if s["lost"] is not None]
    if not counted:
        return "no ledger"
    return f"{sum(counted)} lost in {len(counted)} async steps"


def cluster_p95_text(release: dict[str, Any]) -> str:
    """The range of the cluster run's async p95s (one run: each step once)."""
    p95s = [s["p95_ms"] for s in release["cluster"] or [] if s["mode"] == "async" and s["p95_ms"] is not None]
    return f"async p95 {min(p95s):.1f}-{max(p95s):.1f} ms" if p95s else "async p95 n/a"


def cluster_table(releases: list[dict[str, Any]]) -> str:
    head = ["release", "series", "mode", "rate", "p95 ms", "dropped %", "lost (ledger)", "broker and queues"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in releases:
        for s in r["cluster"] or []:
            lost = "-" if s["lost"] is None else str(s["lost"])
            p95 = "n/a" if s["p95_ms"] is None else f"{s['p95_ms']:.1f}"
            dropped = "n/a" if s["dropped_pct"] is None else f"{s['dropped_pct']:.2f}"
            cells = [_label(r), s["label"], s["mode"], f"{s['rate']:g}", p95, dropped, lost, s["broker"]]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_block(releases: list[dict[str, Any]]) -> str:
    """The block's few lines: p95 by rate, capacity and the ledger, with the data's address."""
    repeats = len(figure_values(releases[0], rates(releases)[0], "p95_ms"))
    lines = [
        f"Async p95 (ms) at the seed's rates, {repeats} repeats, "
        "median [min-max] ([data](/docs/results/brokers/comparison.md)):",
        "",
        headline_table(releases),
        "",
        f"- Capacity of the default publisher with confirms (p95 <= 20 ms): {capacity_row(releases)}.",
        "- Ledger: " + "; ".join(f"{_label(r)} {lost_text(r)}" for r in releases) + ".",
    ]
    if any(r["cluster"] for r in releases):
        lines.append(
            "- Cluster (quorum queues on 3 nodes, a node killed; one run each): "
            + "; ".join(
                f"{_label(r)} {lost_text(r, 'cluster')}, {cluster_p95_text(r)}"
                for r in releases
                if r["cluster"]
            )
            + "."
        )
    return "\n".join(lines)


def _commit(release: dict[str, Any]) -> str:
    text = str(release["git_commit"])[:7] + (" (dirty)" if release["git_dirty"] else "")
    if release.get("cluster_git_commit"):
        dirty = " (dirty)" if release.get("cluster_git_dirty") else ""
        text += f"; cluster {str(release['cluster_git_commit'])[:7]}{dirty}"
    return text


def comparison_markdown(releases: list[dict[str, Any]]) -> str:
    parts = [
        "# RabbitMQ 4.0 (Debian 13) against 3.10 (Debian 12)",
        "",
        "Written by `python -m offload_lab.analysis.broker_comparison` from the run folders beside it "
        "(scripts/compare-brokers.sh). Each figure: median [min-max] over the repeats; a ratio "
        "marked (ranges overlap) is no difference.",
        "",
        "| release | broker and queues (from the broker) | commit |",
        "|---|---|---|",
        *(f"| {r['release']} | {r['broker']} | {_commit(r)} |" for r in releases),
        "",
    ]
    for figure, fmt in (("avg_ms", "{:.1f}"), ("p95_ms", "{:.1f}"), ("p99_ms", "{:.1f}"),
                        ("dropped_pct", "{:.2f}"), ("broker_cpu_pct", "{:.1f}")):  # fmt: skip
        parts += [f"## {figure}", "", headline_table(releases, figure, fmt), ""]
    parts += [
        "## Capacity (fab capacity --mode async, p95 <= 20 ms, 0 dropped)",
        "",
        capacity_row(releases),
        "",
        *(f"- {_label(r)} {c['run']}: {c['headline']}" for r in releases for c in r["capacity"]),
        "",
        "## Ledger (lost per task id)",
        "",
        *(f"- {_label(r)}: {lost_text(r)}" for r in releases),
        "",
    ]
    if any(r["cluster"] for r in releases):
        parts += ["## Cluster profile (k6/sweeps/cluster.yml)", "", cluster_table(releases), ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m offload_lab.analysis.broker_comparison", description=__doc__.split("\n")[0]
    )
    ap.add_argument("out", type=Path, help="the comparison's folder (one subfolder per release)")
    args = ap.parse_args(argv)
    try:
        releases = load_comparison(args.out)
    except (OSError, ValueError, LoadError) as exc:
        print(f"broker_comparison: {exc}", file=sys.stderr)
        return 2
    (args.out / JSON_FILE).write_text(json.dumps(releases, indent=1, sort_keys=True) + "\n")
    (args.out / TABLE_FILE).write_text(comparison_markdown(releases))
    print(comparison_markdown(releases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
