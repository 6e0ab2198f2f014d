"""The page tests' browser: one headless Chromium per test module."""

import pytest
from playwright.sync_api import sync_playwright

from tests.browser import launch


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()
