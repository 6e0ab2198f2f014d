"""Headless Chromium for the page tests: Debian's browser driven by Playwright, and the owner's first steps."""

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PASSWORD = "correct horse battery"
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)"
)


def launch(playwright):
    """One Chromium; each `new_page()` of it is a fresh context, so tests do not share cookies."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])


def set_up_and_log_in(page, url: str, password: str = PASSWORD) -> None:
    """Finishes the first wizard page with `password` and logs in with it."""
    page.goto(url + "/setup")
    page.fill("input[name=password]", password)
    page.fill("input[name=confirmation]", password)
    page.click("#finish-setup")
    page.goto(url + "/login")
    page.fill("input[name=password]", password)
    page.click("#log-in")
