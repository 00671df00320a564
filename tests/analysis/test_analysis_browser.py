"""index.html rendered in a real headless Chromium (Debian's, driven by playwright): every image
loads, nothing is logged as an error, nothing is fetched from outside; a screenshot is kept.

Not skipped when the browser is missing: it fails and says to run scripts/install-deps.sh."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from analysis_testlib import read_csv  # noqa: E402
from browser_testlib import assert_page_ok, render_page  # noqa: E402
from PIL import Image  # noqa: E402

from offload_lab.analysis.html import HtmlReport, write_html  # noqa: E402
from offload_lab.analysis.load import load_run  # noqa: E402
from offload_lab.analysis.report import make_report  # noqa: E402
from offload_lab.analysis.table_model import Table  # noqa: E402

SUMMARY_COLUMNS = ["label", "rate", "throughput_rps", "latency_p95_ms", "drop_rate_pct", "error_rate_pct"]


def timeline_png(path: Path, title: str) -> Path:
    """A stand-in per-step timeline (make_report does not draw them yet)."""
    fig, ax = plt.subplots(figsize=(8, 2.5), dpi=80)
    ax.plot(range(10), [i % 4 * 20 for i in range(10)], label="gateway CPU %")
    ax.set_title(title)
    ax.legend()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def fixture_report(run_dir: Path) -> HtmlReport:
    """An HtmlReport of a fixture run, from what make_report writes and run.json holds."""
    result = make_report(run_dir)
    assert result.ok and result.charts, result.warnings
    run = load_run(run_dir)
    rows = read_csv(result.summary_csv)
    table = Table(
        title="Summary",
        headers=SUMMARY_COLUMNS,
        rows=[[r[c] for c in SUMMARY_COLUMNS] for r in rows],
        right_from=1,
        notes=["from `summary.csv`; **p95** in ms"],
    )
    hosts = [
        (f"{role}: {h['name']}", f"{h['address']}, {h['cpus']} CPUs")
        for role, items in run.meta.hosts.items()
        for h in items
    ]
    gateway = run.meta.settings.get("gateway") or {}
    return HtmlReport(
        title=f"offload-lab report: {run.run_id}",
        subtitle=f"spec {run.meta.spec_name}",
        meta=[
            ("run id", run.run_id),
            ("status", str(run.meta.status)),
            ("started / ended", f"{run.meta.started_at} / {run.meta.ended_at}"),
            ("git commit", run.meta.git_commit + (" (dirty)" if run.meta.git_dirty else "")),
            ("versions", "\n".join(f"{k}: {v}" for k, v in run.meta.versions.items())),
            ("fixture", run.meta.fixture_notes or ""),
        ],
        sections=[
            ("Effective gateway settings", [(k, str(v)) for k, v in gateway.items()]),
            ("Hosts", hosts),
        ],
        spec_text=json.dumps(run.meta.spec, indent=2),
        tables=[table],
        charts=result.charts,
        timelines=[
            (s.file, timeline_png(result.out_dir / f"timeline-{i}.png", s.file))
            for i, s in enumerate(run.steps[:2], 1)
        ],
        notes=["stand-in timelines: drawn by this test", "<not markup>"],
        warnings=result.warnings or ["a warning with <b>markup</b> shown as text"],
    )


def test_report_page_renders_in_chromium(sweep_run):
    report = fixture_report(sweep_run)
    html_path = write_html(report, sweep_run / "report" / "index.html")
    shot = sweep_run / "report" / "index.png"
    check = render_page(html_path, shot)
    assert_page_ok(check)
    assert check.images_total == len(report.charts) + len(report.timelines) >= 8
    # the page, then only its own charts, from its folder: nothing else is fetched
    folder = html_path.parent.resolve().as_uri() + "/"
    assert check.requests[0] == html_path.resolve().as_uri()
    assert len(check.requests) == 1 + check.images_total
    assert all(url.startswith(folder) and url.endswith(".png") for url in check.requests[1:])
    assert shot.stat().st_size > 10_000
    with Image.open(shot) as img:
        width, height = img.size
    assert width >= 1000 and height > 3000, img.size  # the whole page, charts one under another


def test_check_catches_broken_image_and_console_error(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>broken</title></head>\n'
        '<body><p>broken</p><img src="nope.png" alt="missing">\n'
        '<script>console.error("x"); throw new Error("boom")</script></body></html>\n'
    )
    check = render_page(page, tmp_path / "broken.png")
    assert check.images_total == 1
    assert check.images_broken == [f"{(tmp_path / 'nope.png').as_uri()} (missing)"]
    assert "x" in check.console_errors
    assert any("boom" in e for e in check.page_errors)
    assert any("nope.png" in r for r in check.failed_requests)
    try:
        assert_page_ok(check)
    except AssertionError as exc:
        assert "nope.png" in str(exc) and "boom" in str(exc)
    else:
        raise AssertionError("assert_page_ok passed a page with a broken image")
    assert (tmp_path / "broken.png").stat().st_size > 0
