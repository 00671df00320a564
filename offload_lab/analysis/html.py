"""report/index.html: one page (inline CSS, no script) that opens offline with the report folder
it sits in: the run header, warnings, tables, settings, spec, and the charts, linked to the PNG
files beside it rather than held in the page a second time (a published run is committed with
both, and its weight counts)."""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from .table_model import Table


@dataclass
class HtmlReport:
    title: str  # e.g. "offload-lab report: 20261127-101500-seed"
    subtitle: str = ""
    meta: list[tuple[str, str]] = field(default_factory=list)  # run header rows (key, value)
    # extra key/value sections, e.g. ("Effective gateway settings", [...]), ("Hosts", [...])
    sections: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    spec_text: str = ""  # the spec as YAML/JSON text, shown as is
    tables: list[Table] = field(default_factory=list)
    charts: list[Path] = field(default_factory=list)  # PNG files, captioned with their stem
    timelines: list[tuple[str, Path]] = field(default_factory=list)  # (caption, PNG) per step
    notes: list[str] = field(default_factory=list)  # lines with minimal markdown: `code`, **bold**
    warnings: list[str] = field(default_factory=list)


CSS = """
:root { color-scheme: light; --fg: #1d2125; --muted: #5c6670; --line: #d6dbe0; --head: #f1f3f5;
  --accent: #0b5cad; --warn-bg: #fff4e0; --warn-line: #e3a23b; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 1.2rem 1.5rem 3rem; }
h1 { font-size: 1.6rem; margin: 0.4rem 0 0.2rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 0.6rem; padding-bottom: 0.2rem;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.4rem 0 0.4rem; }
.subtitle { color: var(--muted); margin: 0 0 1rem; }
a { color: var(--accent); }
nav.toc { background: var(--head); border: 1px solid var(--line); border-radius: 6px; padding: 0.5rem 1rem;
  display: inline-block; min-width: 18rem; }
nav.toc ul { margin: 0.2rem 0; padding-left: 1.2rem; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.4rem 0; font-size: 0.92rem; }
th, td { border: 1px solid var(--line); padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { white-space: nowrap; }
table.kv td { word-break: break-word; }
.table-notes { color: var(--muted); font-size: 0.88rem; margin: 0.2rem 0 0; padding-left: 1.2rem; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.88em; }
code { background: var(--head); padding: 0 0.25em; border-radius: 3px; }
pre { background: var(--head); border: 1px solid var(--line); border-radius: 6px; padding: 0.7rem;
  overflow-x: auto; }
figure { margin: 1rem 0 1.6rem; }
figure img { display: block; width: auto; max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 0.3rem; }
details { margin: 0.6rem 0; }
summary { cursor: pointer; font-weight: 600; }
.warnings { background: var(--warn-bg); border-left: 4px solid var(--warn-line);
  padding: 0.5rem 1rem 0.5rem 2rem; margin: 0.4rem 0; }
.none { color: var(--muted); }
"""


def _md(text: str) -> str:
    """Escape, then render `code` and **bold** (nothing else): the only markup the notes use."""
    out = []
    for i, part in enumerate(re.split(r"`([^`]*)`", str(text))):
        if i % 2:
            out.append(f"<code>{escape(part)}</code>")
        else:
            out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escape(part)))
    return "".join(out)


def _lines(value: object) -> str:
    """A value as escaped text, its line breaks kept."""
    return "<br>".join(escape(line) for line in str(value).splitlines())


def _src(png: Path, page_dir: Path | None) -> str:
    """The chart's address from the page: the PNG files stay beside index.html (report/ and
    report/timelines/), so the page opens offline without holding every chart a second time."""
    path = Path(os.path.relpath(png, page_dir)) if page_dir is not None else Path(png)
    return urllib.parse.quote(path.as_posix())


class _Ids:
    """Unique, readable anchor ids."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, text: str) -> str:
        base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
        slug, n = base, 2
        while slug in self.used:
            slug, n = f"{base}-{n}", n + 1
        self.used.add(slug)
        return slug


def _table(table: Table) -> str:
    def cells(row: list[str], tag: str) -> str:
        return "".join(
            f'<{tag} class="num">{escape(str(c))}</{tag}>'
            if i >= table.right_from
            else f"<{tag}>{escape(str(c))}</{tag}>"
            for i, c in enumerate(row)
        )

    body = "\n".join(f"<tr>{cells(r, 'td')}</tr>" for r in table.rows)
    head = f"<thead><tr>{cells(table.headers, 'th')}</tr></thead>"
    html = f'<div class="scroll"><table>\n{head}\n<tbody>\n{body}\n</tbody></table></div>'
    if table.notes:
        html += '\n<ul class="table-notes">' + "".join(f"<li>{_md(n)}</li>" for n in table.notes) + "</ul>"
    return html


def _kv(rows: list[tuple[str, str]]) -> str:
    if not rows:
        return '<p class="none">None</p>'
    body = "\n".join(f'<tr><th scope="row">{escape(str(k))}</th><td>{_lines(v)}</td></tr>' for k, v in rows)
    return f'<div class="scroll"><table class="kv">\n<tbody>\n{body}\n</tbody></table></div>'


def _figure(caption: str, src: str) -> str:
    cap = escape(caption)
    return f'<figure>\n<img src="{escape(src)}" alt="{cap}">\n<figcaption>{cap}</figcaption>\n</figure>'


def render_html(report: HtmlReport, page_dir: Path | None = None) -> str:
    """The page; `page_dir`: the folder index.html is written to (chart addresses are relative to it)."""
    ids = _Ids()
    toc: list[tuple[str, str, list[tuple[str, str]]]] = []  # (id, label, sub-entries)
    parts: list[str] = []

    def section(label: str, body: str, sub: list[tuple[str, str]] | None = None) -> None:
        sid = ids(label)
        toc.append((sid, label, sub or []))
        parts.append(f'<section id="{sid}">\n<h2>{escape(label)}</h2>\n{body}\n</section>')

    section("Run", _kv(report.meta))
    if report.warnings:
        items = "".join(f"<li>{_md(w)}</li>" for w in report.warnings)
        section("Warnings", f'<ul class="warnings">{items}</ul>')
    else:
        section("Warnings", '<p class="none">None</p>')
    if report.tables:
        sub, body = [], []
        for t in report.tables:
            tid = ids(t.title)
            sub.append((tid, t.title))
            body.append(f'<h3 id="{tid}">{escape(t.title)}</h3>\n{_table(t)}')
        section("Tables", "\n".join(body), sub)
    if report.charts:
        section("Charts", "\n".join(_figure(Path(p).stem, _src(Path(p), page_dir)) for p in report.charts))
    if report.timelines:
        body = "\n".join(
            f"<details open>\n<summary>{escape(cap)}</summary>\n"
            f"{_figure(cap, _src(Path(p), page_dir))}\n</details>"
            for cap, p in report.timelines
        )
        section("Timelines", body)
    for label, rows in report.sections:
        section(label, _kv(rows))
    if report.spec_text:
        section("Spec", f"<pre>{escape(report.spec_text)}</pre>")
    if report.notes:
        section("Notes", "<ul>" + "".join(f"<li>{_md(n)}</li>" for n in report.notes) + "</ul>")

    toc_items = []
    for sid, label, sub in toc:
        inner = "".join(f'<li><a href="#{s}">{escape(lb)}</a></li>' for s, lb in sub)
        inner = f"<ul>{inner}</ul>" if inner else ""
        toc_items.append(f'<li><a href="#{sid}">{escape(label)}</a>{inner}</li>')
    subtitle = f'<p class="subtitle">{escape(report.subtitle)}</p>\n' if report.subtitle else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(report.title)}</title>\n"
        '<link rel="icon" href="data:,">\n'  # no favicon request, not even for file://
        f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{escape(report.title)}</h1>\n{subtitle}"
        '<nav class="toc" aria-label="Contents"><strong>Contents</strong>\n'
        f"<ul>{''.join(toc_items)}</ul></nav>\n" + "\n".join(parts) + "\n</main>\n</body>\n</html>\n"
    )


def write_html(report: HtmlReport, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, path.parent), encoding="utf-8")
    return path
