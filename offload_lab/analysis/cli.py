"""Command line: `python -m offload_lab.analysis RUN_DIR [--out DIR]` or
`--compare RUN_A RUN_B [--out DIR]`."""

from __future__ import annotations

import argparse
import sys

from .load import LoadError
from .report import compare_runs, make_report

EXIT_OK = 0
EXIT_NOTHING = 1  # nothing usable: no folder, no run.json, no readable step
EXIT_USAGE = 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m offload_lab.analysis",
        description=(
            "Report on one offload-lab run folder (run.json + steps/*.json): PNG charts against offered "
            "rate, index.html, summary.md and summary.csv in RUN_DIR/report/, and the key figures per "
            "point on stdout. With --compare, overlay two runs and show the change from A to B."
        ),
    )
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="run folder, e.g. results/<run-id>")
    p.add_argument(
        "--compare",
        nargs=2,
        metavar=("RUN_A", "RUN_B"),
        help="overlay two runs (default output: RUN_A/report/compare-<run B id>/)",
    )
    p.add_argument(
        "--labels",
        nargs=2,
        metavar=("LABEL_A", "LABEL_B"),
        help=(
            "names of the two runs in a comparison (default: the spec names if they differ, else the "
            "spec name and the settings that differ, else the spec name and the start of the run)"
        ),
    )
    p.add_argument("--out", metavar="DIR", help="write the report here instead of the default")
    p.add_argument("--no-charts", action="store_true", help="write summary.md and summary.csv only")
    p.add_argument(
        "--no-subject-reports",
        action="store_true",
        help=(
            "a capacity suite: write its own report only, not each subject's (what docs/results "
            "publishes; the suite's warnings still list every subject's flags)"
        ),
    )
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the summary table")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if bool(args.run_dir) == bool(args.compare):
        parser().print_usage(sys.stderr)
        print(
            "python -m offload_lab.analysis: error: give either RUN_DIR or --compare RUN_A RUN_B",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        if args.compare:
            result = compare_runs(
                args.compare[0], args.compare[1], args.out, args.labels, charts=not args.no_charts
            )
        else:
            result = make_report(
                args.run_dir, args.out, charts=not args.no_charts, subject_reports=not args.no_subject_reports
            )
    except LoadError as exc:
        print(f"python -m offload_lab.analysis: error: {exc}", file=sys.stderr)
        return EXIT_NOTHING

    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not args.quiet and result.ok:
        print(result.tables)
    if not result.ok:
        print(
            f"python -m offload_lab.analysis: error: nothing usable to chart (see the warnings above); "
            f"summary written to {result.summary_md}",
            file=sys.stderr,
        )
        return EXIT_NOTHING
    print(
        f"report written to {result.out_dir} ({len(result.charts)} charts; the full tables in "
        "index.html and summary.md; summary.csv)"
    )
    if result.warnings:
        print(f"{len(result.warnings)} warning(s): see stderr and the Warnings section of summary.md")
    return EXIT_OK
