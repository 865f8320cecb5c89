"""The console in a real Chromium (Playwright): sign in with Slack, find a run by its text,
open it, see its steps and audit, cancel it while it waits, and see Slack's card change.

Needs playwright and a system Chromium (see tests/sandbox/test_page_browser.py); without
them it skips, saying so. A screenshot goes to ``artifacts/screenshots/console-run.png``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.sandbox.test_page_browser import SCREENSHOTS, browser  # noqa: F401 - the fixture

from .conftest import ADMIN, write_workflow
from .harness import Console, running_console
from .test_runs_api import started, waiting_card

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
async def sqlite_console(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Console]:
    from tests.support.stores import sqlite_database

    async with (
        sqlite_database(tmp_path, sqlite_template) as db,
        running_console(
            db, workflows_dir=write_workflow(tmp_path), SWITCHBOARD_ADMINS=ADMIN
        ) as running,
    ):
        yield running


async def test_sign_in_find_open_and_cancel_a_waiting_run(
    browser: Browser,  # noqa: F811 - the fixture imported above
    sqlite_console: Console,
) -> None:
    from playwright.async_api import expect

    console = sqlite_console
    await started(console, "alice", "conference tickets 450 EUR")
    run_id = await started(console, "alice", "hotel in Lisbon 300 EUR")
    card = await waiting_card(console, "hotel in Lisbon")
    errors: list[str] = []
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())
    await page.goto(f"{console.url}/console")
    await page.get_by_role("button", name="Continue as Alice Archer (@alice)").click()
    await page.locator("#who", has_text="Alice Archer").wait_for()

    await page.locator("input[name=q]").fill("Lisbon")
    await page.locator("#filters button").click()
    await expect(page.locator("tr[data-run]")).to_have_count(1)
    await page.locator(f"tr[data-run='{run_id}']").wait_for()
    await page.locator(f"tr[data-run='{run_id}'] a").click()

    await page.locator("#run-status", has_text="waiting").wait_for()
    await expect(page.locator("tr[data-step='review'] td").nth(1)).to_have_text("approve")
    await page.locator("tr[data-action='run.started']").wait_for()
    await page.locator("#action-reason").fill("booked by the travel desk")
    await page.locator("#cancel-run").click()
    await page.locator("#run-status", has_text="cancelled").wait_for()
    await page.locator("tr[data-action='run.cancelled']").wait_for()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "console-run.png"), full_page=True)

    def settled() -> dict[str, Any] | None:
        message = console.slack.message(console.slack.channel_id("finance-approvals"), card["ts"])
        return message if message and "Cancelled" in str(message.get("blocks")) else None

    await console.slack.wait_for(settled, message="the Slack card did not say cancelled")
    assert errors == []
    await page.close()
