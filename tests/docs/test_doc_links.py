"""The docs are self-contained: every relative link and image in README.md and docs/**/*.md points
at a file git tracks, and no tracked file refers to documents that live outside the repository.

Links checked: markdown links `[text](target)` and images `![alt](target)` (with an optional
title), reference definitions `[name]: target`, and HTML `<a href="...">` / `<img src="...">`.
Skipped: targets with a scheme (http:, https:, mailto:, ...), protocol-relative `//host` ones and
pure anchors (`#...`), and anything inside code spans, fenced code blocks or HTML comments. A
target loses its `#anchor` and `?query`, is resolved against the markdown file's folder (a
leading `/` against the repository root, as GitHub does), and passes when git tracks it or,
for a directory, at least one file under it. A target outside the repository fails.
"""

from __future__ import annotations

import posixpath
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

REPO = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve().relative_to(REPO).as_posix()

# a markdown document named in passing ("see notes.md") and a relative path that climbs ("../x");
# a file a test writes into its tmp_path names no document
_MD_NAME = re.compile(r"(?<![\w.-])([\w.-]+\.md)\b")
_TMP_FILE = re.compile(r"""tmp_path\s*/\s*(["'])[\w.-]+\.md\1""")
_CLIMB = re.compile(r"(?<![\w.])((?:\.\./)+[\w.-]+)")

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
# the `](target "title")` tail that every inline link and image ends with
_INLINE = re.compile(r"""\]\(\s*(<[^>\n]*>|[^\s()]+)(?:\s+(?:"[^"\n]*"|'[^'\n]*'|\([^)\n]*\)))?\s*\)""")
_REFERENCE = re.compile(r"""^ {0,3}\[[^\]\n]+\]:\s*(<[^>\n]*>|\S+)""", re.M)
_HTML = re.compile(r"""<(?:a|img)\b[^>]*?\s(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _without_code(text: str) -> str:
    """The text with fenced code blocks, code spans and HTML comments blanked out."""
    text = _HTML_COMMENT.sub(" ", text)
    lines, fence = [], None
    for line in text.splitlines():
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)[0] * len(m.group(1))
            lines.append("")
            continue
        if fence is not None:
            if line.strip().startswith(fence) and set(line.strip()) <= {fence[0]}:
                fence = None
            lines.append("")
            continue
        lines.append(_CODE_SPAN.sub(" ", line))
    return "\n".join(lines)


def numbered_link_targets(markdown: str) -> list[tuple[int, str]]:
    """(line number, target as written) of every link and image in a markdown text, in order."""
    text = _without_code(markdown)
    found: list[tuple[int, str]] = []
    for m in _INLINE.finditer(text):
        found.append((m.start(1), m.group(1)))
    for m in _REFERENCE.finditer(text):
        found.append((m.start(1), m.group(1)))
    for m in _HTML.finditer(text):
        group = next(i for i, g in enumerate(m.groups(), start=1) if g is not None)
        found.append((m.start(group), m.group(group)))
    targets = []
    for offset, target in sorted(found):
        target = target.strip()
        if target.startswith("<") and target.endswith(">"):
            target = target[1:-1].strip()
        targets.append((text.count("\n", 0, offset) + 1, target))
    return targets


def link_targets(markdown: str) -> list[str]:
    """Every link and image target in a markdown text, as written, in order of appearance."""
    return [target for _, target in numbered_link_targets(markdown)]


def local_target(target: str) -> str | None:
    """The path part of a target that points into the repository, or None for one to skip."""
    if not target or target.startswith("#") or target.startswith("//") or _SCHEME.match(target):
        return None
    path = unquote(re.split(r"[#?]", target, maxsplit=1)[0])
    return path or None


def local_links(markdown: str) -> list[str]:
    """The targets of a markdown text that must exist in the repository (anchor/query stripped)."""
    return [p for p in (local_target(t) for t in link_targets(markdown)) if p is not None]


def resolve(md_file: str, path: str) -> str | None:
    """`path` as written in `md_file` (both relative to the repository root, posix), as a path
    relative to the repository root; None when it points outside the repository."""
    base = "" if path.startswith("/") else posixpath.dirname(md_file)
    joined = posixpath.normpath(posixpath.join(base, path.lstrip("/")))
    if joined == ".." or joined.startswith("../") or posixpath.isabs(joined):
        return None
    return joined


def problem(md_file: str, target: str, tracked: set[str], line: int | None = None) -> str | None:
    """Why `target` in `md_file` (at `line`) is broken, or None when it is fine or not local."""
    where = md_file if line is None else f"{md_file}:{line}"
    path = local_target(target)
    if path is None:
        return None
    resolved = resolve(md_file, path)
    if resolved is None:
        return f"{where}: link {target!r} points outside the repository"
    if resolved == "." or resolved in tracked:
        return None
    prefix = resolved.rstrip("/") + "/"
    if any(f.startswith(prefix) for f in tracked):
        return None
    return f"{where}: link {target!r} -> {resolved} is not a file (or folder) git tracks"


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


def doc_files(tracked: list[str]) -> list[str]:
    return sorted(f for f in tracked if f == "README.md" or (f.startswith("docs/") and f.endswith(".md")))


# --------------------------------------------------------------------------------------------


def test_link_extractor_on_a_handmade_document():
    markdown = "\n".join(
        [
            "# Title",
            'See [the design](docs/design.md#hosts) and ![a chart](img/chart.png "Chart").',
            "A [folder](k6/sweeps/) and [a query](report.md?plain=1), [nested [brackets]](a/b.md).",
            "[![badge](badge.svg)](../outside.md)",
            "Skipped: [web](https://example.com/x.md), [mail](mailto:me@example.com),",
            "[plain http](http://example.com), [anchor](#results), [cdn](//cdn.example.com/x.js).",
            "Code is not a link: `[code](not-a-link.md)` and ``[more](neither.md)``.",
            "```",
            "[fenced](not-this-either.md)",
            "```",
            "<!-- [commented](nor-this.md) -->",
            '<img src="pics/one.png" alt="one"> and <a href=\'docs/two%20words.md\'>two</a>',
            "[ref]: <docs/ref.md>",
        ]
    )
    assert link_targets(markdown) == [
        "docs/design.md#hosts",
        "img/chart.png",
        "k6/sweeps/",
        "report.md?plain=1",
        "a/b.md",
        "badge.svg",
        "../outside.md",
        "https://example.com/x.md",
        "mailto:me@example.com",
        "http://example.com",
        "#results",
        "//cdn.example.com/x.js",
        "pics/one.png",
        "docs/two%20words.md",
        "docs/ref.md",
    ]
    assert local_links(markdown) == [
        "docs/design.md",
        "img/chart.png",
        "k6/sweeps/",
        "report.md",
        "a/b.md",
        "badge.svg",
        "../outside.md",
        "pics/one.png",
        "docs/two words.md",
        "docs/ref.md",
    ]


def test_link_rules_on_a_handmade_tree():
    tracked = {"README.md", "docs/design.md", "docs/results/seed/summary.md", "k6/sweeps/seed.yml"}
    assert problem("README.md", "docs/design.md#layout", tracked) is None
    assert problem("docs/design.md", "../k6/sweeps/", tracked) is None  # a folder with files
    assert problem("docs/design.md", "results/seed", tracked) is None
    assert problem("docs/design.md", "/README.md", tracked) is None  # from the repository root
    assert problem("docs/design.md", "#hosts", tracked) is None
    assert problem("docs/design.md", "https://example.com/missing.md", tracked) is None
    missing = problem("README.md", "docs/results/publishers/overview.png", tracked) or ""
    assert "README.md" in missing and "docs/results/publishers/overview.png" in missing
    assert problem("docs/design.md", "../../elsewhere/notes.md", tracked) is not None  # outside
    assert problem("docs/design.md", "results/seed/summary.md/", tracked) is None
    assert problem("docs/design.md", "results/se", tracked) is not None  # a prefix is no folder


def test_every_relative_link_in_the_docs_points_at_a_tracked_file():
    tracked_list = tracked_files()
    tracked = set(tracked_list)
    docs = doc_files(tracked_list)
    assert "README.md" in docs
    problems = []
    for md_file in docs:
        path = REPO / md_file
        if not path.is_file():
            continue  # deleted in the work tree; nothing to check
        for lineno, target in numbered_link_targets(path.read_text(encoding="utf-8")):
            reason = problem(md_file, target, tracked, lineno)
            if reason:
                problems.append(reason)
    assert not problems, "broken links in the docs:\n" + "\n".join(problems)


def outside_references(rel: str, text: str, tracked_names: set[str]) -> list[str]:
    """What a tracked file names outside the repository: a markdown document no tracked file is
    called, or a relative path that climbs above the repository root."""
    found = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        for m in _MD_NAME.finditer(_TMP_FILE.sub("", line)):
            if m.group(1) not in tracked_names:
                found.append(f"{rel}:{lineno}: names {m.group(1)}, which the repository does not have")
        for m in _CLIMB.finditer(line):
            if posixpath.normpath(posixpath.join(posixpath.dirname(rel), m.group(1))).startswith(".."):
                found.append(f"{rel}:{lineno}: {m.group(1)} is outside the repository")
    return found


def test_outside_references_on_handmade_text():
    names = {"README.md", "design.md"}
    assert outside_references("docs/a.md", "see design.md and ../README.md", names) == []
    found = outside_references("core-go/README.md", "see ../../notes/PLAN.md, the contract", names)
    assert len(found) == 2 and "PLAN.md" in found[0] and "../../notes is outside" in found[1]
    assert outside_references("tests/t.py", 'page = tmp_path / "page.md"', names) == []
    assert len(outside_references("tests/t.py", 'page = other / "page.md"', names)) == 1


# documents the tools write into a run folder (not tracked until a run is published), each
# with the module that writes it: naming them is not naming something outside the repository
WRITTEN_BY_THE_TOOLS = {"capacity.md": "offload_lab/capacity/search.py"}


def test_the_documents_the_tools_write_are_written_there():
    for name, module in WRITTEN_BY_THE_TOOLS.items():
        assert name in (REPO / module).read_text(encoding="utf-8"), f"{module} no longer writes {name}"


def test_no_tracked_file_refers_to_documents_outside_the_repository():
    tracked = tracked_files()
    names = {posixpath.basename(rel) for rel in tracked} | set(WRITTEN_BY_THE_TOOLS)
    problems = []
    for rel in tracked:
        if rel == THIS_FILE:
            continue
        path = REPO / rel
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        problems += outside_references(rel, data.decode("utf-8", "replace"), names)
    assert not problems, (
        "tracked files refer to documents outside the repository (point into docs/ instead):\n"
        + "\n".join(problems)
    )
