"""The publisher benchmark's records and verdicts (bench/publishers.py writes them, this reads them).

One benchmark folder per mode holds bench.json (the settings, and one entry per step naming its
raw k6 summary under k6/) and bench.md, the table this module makes from them. Every figure is
computed here from the raw summaries with the report's own definitions (analysis.metrics), so
the committed table, and the blocks made from it (docs/publications/publishers.md), can be
rebuilt and checked.

A step holds when its p95 is within the benchmark's bound with nothing failed or dropped. A
subject's capacity in one repeat is the highest rate up to which every step held (rates tried in
increasing order); its ratio to a reference subject is taken within the same repeat, so a day on
which the machine is slower moves both sides of the ratio.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .fmt import spread
from .load import LoadedStep
from .metrics import compute_metrics

SCHEMA_VERSION = 1
BENCH_FILE = "bench.json"
TABLE_FILE = "bench.md"
MODES = {
    "publish": "the publish path alone: no consumer, the queue purged after every step",
    "system": "the whole system on one box: the real core consumes, works and writes its ledger",
}
# the references every subject's capacity is divided by
NO_CONFIRM = "kombu_pool, no confirms"
NO_OP = "noop"


@dataclass(frozen=True)
class StepFigures:
    avg_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    requests: int
    failed_pct: float
    dropped: int
    throughput: float


def step_figures(summary: dict, endpoint: str, rate: float, duration_s: float) -> StepFigures:
    """The report's own figures (offload_lab.analysis.metrics) for one k6 summary."""
    mode = "sync" if endpoint == "/sync" else "async"  # /noop answers like /async
    m = compute_metrics(
        LoadedStep(
            file="bench", index=None, mode=mode, rate=rate, label=mode, duration_s=duration_s, k6=summary
        )
    )
    return StepFigures(
        avg_ms=m.lat_avg,
        p95_ms=m.lat_p95,
        p99_ms=m.lat_p99,
        requests=m.requests or 0,
        failed_pct=100 * (m.error_rate or 0.0),
        dropped=m.dropped or 0,
        throughput=m.throughput or 0.0,
    )


@dataclass(frozen=True)
class BenchStep:
    repeat: int
    rate: int
    subject: str
    position: int  # the order it ran in among its rate's steps of that repeat (0: first)
    figures: StepFigures

    def held(self, p95_bound_ms: float) -> bool:
        f = self.figures
        return f.p95_ms is not None and f.p95_ms <= p95_bound_ms and f.failed_pct == 0 and f.dropped == 0


@dataclass(frozen=True)
class Capacity:
    rate: int  # 0: the lowest rate tried already failed
    held_every_rate: bool  # the search never failed: the capacity is at least `rate`


@dataclass(frozen=True)
class Bench:
    mode: str
    settings: dict
    subjects: list[str]
    steps: list[BenchStep]

    @property
    def p95_bound_ms(self) -> float:
        return float(self.settings["p95_ms"])

    @property
    def repeats(self) -> list[int]:
        return sorted({s.repeat for s in self.steps})

    def capacity(self, subject: str, repeat: int) -> Capacity:
        tried = sorted(
            (s for s in self.steps if s.subject == subject and s.repeat == repeat), key=lambda s: s.rate
        )
        held = 0
        for step in tried:
            if not step.held(self.p95_bound_ms):
                return Capacity(held, held_every_rate=False)
            held = step.rate
        return Capacity(held, held_every_rate=True)

    def ratios(self, subject: str, reference: str) -> tuple[list[float], bool]:
        """The subject's capacity over the reference's, per repeat where the reference held some
        rate; and whether any of them is a bound (one side held every rate tried)."""
        values, bound = [], False
        for repeat in self.repeats:
            mine, theirs = self.capacity(subject, repeat), self.capacity(reference, repeat)
            if theirs.rate == 0:
                continue
            values.append(mine.rate / theirs.rate)
            bound = bound or mine.held_every_rate or theirs.held_every_rate
        return values, bound

    def p95_at(self, subject: str, rate: int) -> list[float]:
        return [
            s.figures.p95_ms
            for s in self.steps
            if s.subject == subject and s.rate == rate and s.figures.p95_ms is not None
        ]


def load_bench(folder: Path) -> Bench:
    data = json.loads((folder / BENCH_FILE).read_text())
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{folder / BENCH_FILE}: schema_version {data.get('schema_version')!r}")
    settings = data["settings"]
    endpoints = {s["name"]: s["endpoint"] for s in data["subjects"]}
    steps = []
    for entry in data["steps"]:
        summary = json.loads((folder / entry["summary"]).read_text())
        figures = step_figures(summary, endpoints[entry["subject"]], entry["rate"], settings["duration_s"])
        steps.append(BenchStep(entry["repeat"], entry["rate"], entry["subject"], entry["position"], figures))
    return Bench(data["mode"], settings, [s["name"] for s in data["subjects"]], steps)


def _capacity_text(bench: Bench, subject: str) -> str:
    capacities = [bench.capacity(subject, r) for r in bench.repeats]
    text = spread([c.rate for c in capacities], "{:,.0f}")
    if any(c.held_every_rate for c in capacities):
        text += f" (held every rate in {sum(c.held_every_rate for c in capacities)} of {len(capacities)})"
    return text


def _ratio_text(bench: Bench, subject: str, reference: str) -> str:
    if reference not in bench.subjects:
        return "n/a"
    values, bound = bench.ratios(subject, reference)
    return spread(values) + (" *" if bound and values else "")


def _subject_table(bench: Bench, columns: list[tuple[str, Callable[[str], str]]]) -> list[str]:
    """A markdown table with one row per subject: columns are (header, cell of a subject)."""
    lines = [
        "| subject | " + " | ".join(header for header, _ in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    lines += [
        f"| {subject} | " + " | ".join(cell(subject) for _, cell in columns) + " |"
        for subject in bench.subjects
    ]
    return lines


def _ratio_columns(bench: Bench) -> list[tuple[str, Callable[[str], str]]]:
    return [
        (f"ratio to {ref}", lambda subject, ref=ref: _ratio_text(bench, subject, ref))
        for ref in (NO_CONFIRM, NO_OP)
    ]


def capacity_table(bench: Bench) -> str:
    """Per subject: capacity, its ratios to the references, p95 at the lowest rate."""
    lowest = min(s.rate for s in bench.steps)
    columns = [
        ("capacity /s", lambda subject: _capacity_text(bench, subject)),
        *_ratio_columns(bench),
        (f"p95 ms at {lowest}/s", lambda subject: spread(bench.p95_at(subject, lowest))),
    ]
    return "\n".join(_subject_table(bench, columns))


def readme_block(bench: Bench) -> str:
    """The lines between the page's markers for this mode: the ratios only (this machine's
    absolute rates change from day to day)."""
    s = bench.settings
    lines = [
        f"{MODES[bench.mode].capitalize()} ({len(bench.repeats)} repeats, capacity at p95 <= "
        f"{bench.p95_bound_ms:g} ms with nothing failed or dropped; median [min-max] of the repeats; "
        f"[data](/docs/results/bench/{bench.mode}/{TABLE_FILE}), {s['git_commit'][:7]}):",
        "",
        *_subject_table(bench, _ratio_columns(bench)),
        "",
        "\\* a bound: one side of the ratio held every rate tried in some repeat.",
    ]
    return "\n".join(lines)


def steps_table(bench: Bench) -> str:
    lines = [
        "| repeat | rate /s | order | subject | avg ms | p95 ms | p99 ms | failed % | dropped | held |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in sorted(bench.steps, key=lambda s: (s.repeat, s.rate, s.position)):
        f = s.figures
        held = "yes" if s.held(bench.p95_bound_ms) else "no"
        lines.append(
            f"| {s.repeat} | {s.rate} | {s.position + 1} | {s.subject} | {_ms(f.avg_ms)} | {_ms(f.p95_ms)} "
            f"| {_ms(f.p99_ms)} | {f.failed_pct:.2f} | {f.dropped} | {held} |"
        )
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def table_markdown(bench: Bench) -> str:
    s = bench.settings
    return "\n".join(
        [
            f"# Publisher benchmark: {bench.mode} mode",
            "",
            f"{MODES[bench.mode].capitalize()}. `bench/publishers.sh --mode {bench.mode}`, commit "
            f"{s['git_commit']}, {s['started']}; {s['cpus']} CPUs, k6 on the same machine; "
            f"{s['vus']} VUs (pre-allocated = max), {s['duration_s']:g} s per step, rates "
            f"{', '.join(map(str, s['rates']))}/s; gunicorn {s['gateway']}; {len(bench.repeats)} repeats, "
            "the subjects interleaved rate by rate, their order rotated each repeat; a subject whose "
            "step failed is not run at the higher rates of that repeat.",
            "",
            f"A step holds with p95 <= {bench.p95_bound_ms:g} ms, 0 failed and 0 dropped. Capacity: "
            "the highest rate up to which every step of a repeat held; ratios are taken within each "
            "repeat. Figures: median [min-max] of the repeats. * one side of a ratio held every rate "
            "tried in some repeat, so the ratio is a bound there.",
            "",
            capacity_table(bench),
            "",
            "## Every step",
            "",
            "Recomputed from the raw k6 summaries in k6/ (named in bench.json).",
            "",
            steps_table(bench),
            "",
        ]
    )
