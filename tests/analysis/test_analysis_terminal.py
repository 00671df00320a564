"""What `python -m offload_lab.analysis` prints: the key figures per point, in a table that fits a terminal;
the full tables stay in summary.md and index.html."""

from __future__ import annotations

from analysis_testlib import k6_expected, read_json, run_cli

from offload_lab.analysis.terminal import TERMINAL_WIDTH, render

KEY_COLUMNS = ["series", "rate/s", "achieved/s", "p95 ms", "errors", "dropped", "lost"]


def summary_lines(stdout: str) -> list[str]:
    """What is printed before the closing line (which names the output folder, as long as it is)."""
    lines = stdout.splitlines()
    return lines[: next(i for i, line in enumerate(lines) if line.startswith("report written to"))]


NOTE_STARTS = ("lost n/a:", "each figure", "n/a:", "* ")  # terminal.py's notes under the table


def printed_table(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("series"))
    block = lines[start : lines.index("", start) if "" in lines[start:] else None]
    notes = next((i for i, line in enumerate(block) if line.startswith(NOTE_STARTS)), len(block))
    return block[:notes]


def test_the_printed_summary_fits_a_terminal_and_holds_the_key_figures(sweep_run):
    res = run_cli(sweep_run)
    assert res.returncode == 0, res.stderr
    assert max(len(line) for line in summary_lines(res.stdout)) <= TERMINAL_WIDTH
    table = printed_table(res.stdout)
    assert table[0].split()[:2] == ["series", "rate/s"]
    for column in KEY_COLUMNS:
        assert column in table[0]
    assert not [line for line in res.stdout.splitlines() if line.startswith("|")]  # no markdown dump
    # sync at 30/s: its achieved rate and drop rate, as k6 counted them
    exp = k6_expected(read_json(sweep_run / "steps" / "03-sync-30.json"))
    sync30 = next(line.split() for line in table if line.split()[:2] == ["sync", "30"])
    assert sync30[2].rstrip("*") == f"{exp['throughput_rps']:.1f}"
    assert f"{exp['drop_rate_pct']:.1f}%" in sync30
    async30 = next(line.split() for line in table if line.split()[:2] == ["async", "30"])
    step = read_json(sweep_run / "steps" / "04-async-30.json")
    assert step.get("ledger") is None and async30[-1] == "n/a"  # no ledger: no loss counted
    # the full tables are in summary.md, wider than a terminal
    md = (sweep_run / "report" / "summary.md").read_text()
    assert "p99 (ms)" in md and "p99" not in table[0]
    assert max(len(line) for line in md.splitlines() if line.startswith("| rate")) > TERMINAL_WIDTH


def test_series_that_are_not_modes_get_a_mode_column(publishers_run):
    res = run_cli(publishers_run)
    assert res.returncode == 0, res.stderr
    table = printed_table(res.stdout)
    assert table[0].split()[:3] == ["series", "mode", "rate/s"]
    assert {line.split()[0] for line in table[2:]} == {"kombu_pool", "pika_per_request", "pika_shared"}
    assert max(len(line) for line in summary_lines(res.stdout)) <= TERMINAL_WIDTH


def test_a_comparison_with_long_labels_still_fits(sweep_run, tmp_path):
    long_a, long_b = "a" * 70, "b" * 70
    res = run_cli("--compare", sweep_run, sweep_run, "--labels", long_a, long_b, "--out", tmp_path / "c")
    assert res.returncode == 0, res.stderr
    lines = summary_lines(res.stdout)
    assert max(len(line) for line in lines) <= TERMINAL_WIDTH
    assert lines[0] == f"A = {long_a}: run"  # the runs, named once at the top (wrapped)
    table = printed_table(res.stdout)
    assert len(table) == 2 + 8  # header, rule, 2 runs x 2 series x 2 rates
    a_rows = [line.split() for line in table[2:] if line.startswith("a")]
    assert all(row[0].endswith("…:") for row in a_rows)  # run A's long label is cut in the middle ...
    assert [row[1] for row in a_rows] == ["sync", "async", "sync", "async"]  # ... keeping the step label
    assert [row[2] for row in a_rows] == ["10", "10", "30", "30"]  # and every figure


def test_render_cuts_only_the_first_column():
    rows = [["x" * 200, "1", "22.5"], ["short", "10", "3"]]
    text = render(["series", "n", "value"], rows, text_columns=1, width=40)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 40
    assert lines[2].split()[1:] == ["1", "22.5"] and lines[2].split()[0].endswith("…")
    assert lines[3].split() == ["short", "10", "3"]
