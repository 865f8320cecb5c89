"""The demo in a real Chromium: the sandbox page acts as Dana; its Console link signs in
with Slack (the emulator's OpenID Connect) as Dana; switched to Alice on the page, the
next sign-in is Alice's. Same fixtures as tests/sandbox/test_page_browser.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.sandbox.page_harness import RunningDemo
from tests.sandbox.test_page_browser import browser, open_page, running  # noqa: F401

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def console_via_link(sandbox: Page) -> Page:
    """Click the page's Console link; Slack asks the acting person only; consent."""
    async with sandbox.context.expect_page() as opened:
        await sandbox.locator("#console-link").click()
    console = await opened.value
    consent = console.get_by_role("button", name="Continue as")
    await consent.first.wait_for()
    assert await consent.count() == 1
    await consent.click()
    return console


async def test_the_demo_console_signs_in_as_the_pages_acting_user(
    browser: Browser,  # noqa: F811 - the fixture imported above
    running: RunningDemo,  # noqa: F811
) -> None:
    errors: list[str] = []
    sandbox = await open_page(browser, running.url, "user=dana&view=general", errors)
    console = await console_via_link(sandbox)
    await console.locator("#who", has_text="Dana Dorsey").wait_for()

    await sandbox.locator("#user-switch").select_option("alice")
    await sandbox.locator("#user-role", has_text="@alice").wait_for()
    again = await console_via_link(sandbox)
    await again.locator("#who", has_text="Alice Archer").wait_for()
    assert errors == []
