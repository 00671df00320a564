"""Render a local HTML page in a real headless browser and report what a person would see broken.

Playwright (requirements/dev.txt) drives Debian's chromium (deps/debian-packages.txt): playwright's
own browser download cannot work here and is never used. A uniquely named module, like
analysis_testlib, so that other parts' test helpers cannot shadow it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1366, "height": 900}  # a laptop screen
INSTALL_HINT = "run scripts/install-deps.sh (it installs chromium and playwright from the project's lists)"
# playwright adds most "stay quiet" switches itself (--disable-background-networking, --disable-sync,
# --disable-component-update, ...); these are the ones the page test relies on, said explicitly.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-crash-reporter",
    # no name resolves: even with the switches above Chromium looks up accounts.google.com and
    # update.googleapis.com at start; with this it sends no DNS query at all (file:// needs none)
    "--host-resolver-rules=MAP * ~NOTFOUND",
]

IMAGES_JS = """() => Array.from(document.images).map(img => ({
  src: img.currentSrc || img.src, alt: img.alt, ok: img.complete && img.naturalWidth > 0 }))"""


@dataclass
class PageCheck:
    url: str
    images_total: int = 0
    images_broken: list[str] = field(default_factory=list)  # "src (alt)" of images not loaded
    console_errors: list[str] = field(default_factory=list)  # console messages of type error
    page_errors: list[str] = field(default_factory=list)  # uncaught exceptions
    failed_requests: list[str] = field(default_factory=list)  # "url: reason"
    requests: list[str] = field(default_factory=list)  # every URL the page asked for (data: ones aside)
    seconds: float = 0.0  # launch, load, check, screenshot


def _short(src: str) -> str:
    return src[:60] + "..." if src.startswith("data:") and len(src) > 60 else src


def render_page(html_path: Path, screenshot_path: Path) -> PageCheck:
    """Open html_path (file://) in headless Chromium, wait for load, check every <img>, and save a
    full-page screenshot. Fails the test (not skip) when chromium or playwright is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"the Python package playwright is missing ({exc}): {INSTALL_HINT}", pytrace=False)
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing (Debian package chromium): {INSTALL_HINT}", pytrace=False)

    url = Path(html_path).resolve().as_uri()
    check = PageCheck(url=url)
    started = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS, timeout=TIMEOUT_MS
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(TIMEOUT_MS)
            page.on("console", lambda m: check.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: check.page_errors.append(str(e)))
            page.on("request", lambda r: check.requests.append(_short(r.url)))
            page.on("requestfailed", lambda r: check.failed_requests.append(f"{_short(r.url)}: {r.failure}"))
            page.goto(url, wait_until="load", timeout=TIMEOUT_MS)
            images = page.evaluate(IMAGES_JS)
            check.images_total = len(images)
            check.images_broken = [f"{_short(i['src'])} ({i['alt']})" for i in images if not i["ok"]]
            Path(screenshot_path).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot_path), full_page=True, timeout=TIMEOUT_MS)
        finally:
            browser.close()
    check.seconds = time.monotonic() - started
    return check


def assert_page_ok(check: PageCheck) -> None:
    """Every image loaded, nothing logged as an error, nothing failed, nothing fetched from outside."""
    outside = [u for u in check.requests if not u.startswith(("file:", "data:"))]
    problems = {
        "broken images": check.images_broken,
        "console errors": check.console_errors,
        "page errors": check.page_errors,
        "failed requests": check.failed_requests,
        "requests leaving the file system": outside,
    }
    found = {k: v for k, v in problems.items() if v}
    assert not found, f"{check.url}: {found}"
