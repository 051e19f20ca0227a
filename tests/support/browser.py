"""Headless Debian Chromium through Playwright, plus Streamlit-aware waits.

Usage::

    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page()
        page.goto(srv.base_url)
        wait_for_app(page)
        screenshot(page, "queue_page")          # -> tests/artifacts/queue_page.png
        browser.close()

``playwright install`` cannot download browsers here: Debian's ``chromium``
package (``/usr/bin/chromium``) is used instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support import REPO_ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS_DIR = REPO_ROOT / "tests" / "artifacts"
"""Screenshots land here (git-ignored)."""

APP_IDLE_SELECTOR = '[data-testid="stApp"][data-test-script-state="notRunning"]'
"""The app root once a script run has finished (it reads "initial" before the first run)."""


def launch_browser(playwright: Playwright, *, headless: bool = True, **kwargs: Any) -> Browser:
    """Launch headless ``/usr/bin/chromium`` with the flags this machine needs.

    Extra *kwargs* go to ``playwright.chromium.launch`` (e.g. ``slow_mo``).
    Raises ``RuntimeError`` naming the apt package when chromium is missing.
    """
    if not Path(CHROMIUM_PATH).exists():
        raise RuntimeError(
            f"{CHROMIUM_PATH} not found; install it with: apt-get install chromium "
            "(or run scripts/test.sh, which does)"
        )
    args = [*CHROMIUM_ARGS, *kwargs.pop("args", [])]
    return playwright.chromium.launch(
        executable_path=CHROMIUM_PATH, args=args, headless=headless, **kwargs
    )


def wait_for_app(page: Page, *, timeout: float = 30_000, settle_ms: float = 300) -> None:
    """Wait until Streamlit has finished its current script run, then settle briefly.

    Call it after ``page.goto`` and after each interaction that triggers a rerun.
    *timeout* is in milliseconds (Playwright's unit). The settle lets a rerun that an
    interaction has just requested start (and the DOM catch up) before waiting again.
    """
    page.wait_for_selector(APP_IDLE_SELECTOR, timeout=timeout)
    if settle_ms:
        page.wait_for_timeout(settle_ms)
        page.wait_for_selector(APP_IDLE_SELECTOR, timeout=timeout)


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of *page* as ``tests/artifacts/<name>.png`` and return its path."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "screenshot"
    if stem.lower().endswith(".png"):
        stem = stem[:-4]
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS_DIR / f"{stem}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
