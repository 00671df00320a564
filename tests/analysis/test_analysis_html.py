"""offload_lab/analysis/html.py: the self-contained index.html, checked as text (the browser test
renders it)."""

from __future__ import annotations

import re
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from offload_lab.analysis.html import HtmlReport, render_html, write_html  # noqa: E402
from offload_lab.analysis.table_model import Table  # noqa: E402


def small_png(path: Path, color: str = "tab:blue") -> Path:
    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.plot([0, 1, 2], [1, 3, 2], color=color)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


class Page(HTMLParser):
    """Tags, ids, links, images and the text of the page, with their nesting checked."""

    VOID = {"meta", "img", "link", "br", "hr", "input", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag == "img":
            self.images.append(a)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    assert not page.errors and not page.stack, (page.errors, page.stack)
    return page


@pytest.fixture
def report(tmp_path: Path) -> HtmlReport:
    return HtmlReport(
        title="offload-lab report: 20261127-101500-seed",
        subtitle="run 20261127-101500-seed",
        meta=[("git commit", "abc123 (dirty)"), ("versions", "k6: v1.1.0")],
        sections=[
            ("Effective gateway settings", [("PUBLISHER", "kombu_pool"), ("WORKERS", "4")]),
            ("Hosts", [("gateway", "10.77.77.12, CPUs 2-3"), ("core", "10.77.77.13\n<pinned> 4-5")]),
        ],
        spec_text="name: seed\nrates: [10, 30]\n",
        tables=[
            Table(
                title="Client view",
                headers=["label", "rate", "p95 (ms)"],
                rows=[["sync", "10", "210.5"], ["<script>alert(1)</script>", "30", "1 234.0"]],
                right_from=1,
                notes=["`p95`: 95th percentile of **all** requests"],
            )
        ],
        charts=[small_png(tmp_path / "p95_latency.png"), small_png(tmp_path / "throughput.png", "tab:red")],
        timelines=[("01 sync 10/s", small_png(tmp_path / "timeline-01.png", "tab:green"))],
        notes=["**loadgen**: CPU under 80% in every step", "a & b < c"],
        warnings=["steps/03.json: <b>not</b> valid JSON"],
    )


def test_page_is_well_formed_html5_with_nothing_fetched_from_outside_its_folder(report):
    html = render_html(report, report.charts[0].parent)
    assert html.startswith("<!DOCTYPE html>\n")
    assert '<meta charset="utf-8">' in html
    page = parse(html)
    assert page.tags[0] == "html" and "head" in page.tags and "body" in page.tags and "style" in page.tags
    assert "script" not in page.tags
    # nothing is fetched from outside the report's folder: no http(s) source, no absolute or
    # upward path, no stylesheet link, no @import
    assert not re.search(r"""href=["'](?!#|data:)""", html)
    srcs = [img["src"] for img in page.images]
    assert srcs and all(not src.startswith(("/", "..")) and ":" not in src for src in srcs)
    assert "@import" not in html and "url(" not in html
    assert len(page.ids) == len(set(page.ids)), "duplicate ids"


def test_every_text_is_escaped(report):
    html = render_html(report)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>not</b>" not in html and "&lt;b&gt;not&lt;/b&gt;" in html
    assert "a &amp; b &lt; c" in html
    text = "".join(parse(html).text)
    assert "<script>alert(1)</script>" in text  # shown as text, as written


def test_numeric_columns_are_right_aligned(report):
    html = render_html(report)
    assert "<th>label</th>" in html and '<th class="num">rate</th>' in html
    assert "<td>sync</td>" in html and '<td class="num">210.5</td>' in html
    assert re.search(r"td\.num[^{]*\{[^}]*text-align:\s*right", html)


def test_each_chart_linked_beside_the_page_in_order(report, tmp_path):
    """The page names each chart's PNG by its address from the page's folder (no copy inside)."""
    page_dir = report.charts[0].parent
    page = parse(render_html(report, page_dir))
    srcs = [img["src"] for img in page.images]
    expected = [*report.charts, report.timelines[0][1]]
    assert len(srcs) == len(expected) and not any(src.startswith("data:") for src in srcs)
    for src, png in zip(srcs, expected, strict=True):
        assert (page_dir / urllib.parse.unquote(src)).read_bytes() == png.read_bytes()
    assert [img["alt"] for img in page.images] == ["p95_latency", "throughput", "01 sync 10/s"]
    assert "<figcaption>p95_latency</figcaption>" in render_html(report)


def test_timelines_in_open_details(report):
    html = render_html(report)
    assert re.search(r"<details open>\s*<summary>01 sync 10/s</summary>\s*<figure>", html)


def test_toc_links_to_every_section(report):
    page = parse(render_html(report))
    anchors = [h[1:] for h in page.hrefs if h.startswith("#")]
    for name in ["run", "warnings", "tables", "client-view", "charts", "timelines"]:
        assert name in anchors
    for name in ["effective-gateway-settings", "hosts", "spec", "notes"]:
        assert name in anchors
    assert set(anchors) <= set(page.ids), set(anchors) - set(page.ids)


def test_warnings_section_always_there(report):
    html = render_html(report)
    section = re.search(r'<section id="warnings">(.*?)</section>', html, re.S).group(1)
    assert "not</b>" not in section and "valid JSON" in section
    report.warnings = []
    html = render_html(report)
    section = re.search(r'<section id="warnings">(.*?)</section>', html, re.S).group(1)
    assert "None" in section
    assert 'href="#warnings"' in html


def test_minimal_markdown_after_escaping(report):
    html = render_html(report)
    assert "<code>p95</code>: 95th percentile of <strong>all</strong> requests" in html
    assert "<strong>loadgen</strong>: CPU under 80% in every step" in html
    report.notes = ["`<b>` and **<i>x</i>**"]
    html = render_html(report)
    assert "<code>&lt;b&gt;</code> and <strong>&lt;i&gt;x&lt;/i&gt;</strong>" in html


def test_key_value_sections_spec_and_meta(report):
    html = render_html(report)
    text = "".join(parse(html).text)
    for word in ["abc123 (dirty)", "PUBLISHER", "kombu_pool", "10.77.77.12, CPUs 2-3"]:
        assert word in text
    assert "<td>10.77.77.13<br>&lt;pinned&gt; 4-5</td>" in html  # line breaks kept, text escaped
    assert "<pre>name: seed\nrates: [10, 30]\n</pre>" in html
    assert "<title>offload-lab report: 20261127-101500-seed</title>" in html


def test_empty_parts_are_left_out(tmp_path):
    html = render_html(HtmlReport(title="t"))
    page = parse(html)
    assert [h for h in page.hrefs if h.startswith("#")] == ["#run", "#warnings"]
    assert "<img" not in html and "<pre>" not in html


def test_same_titles_get_distinct_anchors(report):
    report.tables.append(Table(title="Client view", headers=["a"], rows=[["1"]]))
    page = parse(render_html(report))
    assert "client-view" in page.ids and "client-view-2" in page.ids


def test_write_html(report, tmp_path):
    out = write_html(report, tmp_path / "report" / "index.html")
    assert out == tmp_path / "report" / "index.html"
    assert out.read_text(encoding="utf-8") == render_html(report, out.parent)
