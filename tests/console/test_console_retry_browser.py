"""The console in a real Chromium: an operator signs in, opens a run that FAILED (the ERP
answered 503), retries it from a chosen step once the ERP is back, and the run finishes;
Slack's thread says it was retried and that it finished, as after ``/flow retry``.

The ERP is a real HTTP server on loopback reached through an ``http`` connection, so the
failure and the recovery are the connector's own. Same fixtures as test_console_browser.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.sandbox.test_page_browser import browser  # noqa: F401 - the fixture
from tests.support.servers import serve_asgi

from .conftest import ADMIN, write_workflow
from .harness import Console, running_console
from .test_runs_api import started

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

INVOICE = """
name: invoice
triggers:
  - command: invoice
steps:
  - id: note
    set: {noted: "{{ input.text }}"}
  - id: book
    http: {connection: erp, method: POST, path: /invoices, json: {text: "{{ input.text }}"}}
    retry: {attempts: 1}
  - id: done
    set: {booked: true}
"""


class Erp:
    """Answers 503 until it is ``up``; counts the bookings it took."""

    def __init__(self) -> None:
        self.up = False
        self.booked: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/invoices", self.invoices, methods=["POST"])])

    async def invoices(self, request: Request) -> JSONResponse:
        if not self.up:
            return JSONResponse({"error": "maintenance"}, status_code=503)
        self.booked.append(await request.json())
        return JSONResponse({"id": f"INV-{len(self.booked)}"}, status_code=201)


@pytest.fixture
def erp() -> Erp:
    return Erp()


@pytest.fixture
async def erp_console(tmp_path: Path, sqlite_template: Path, erp: Erp) -> AsyncIterator[Console]:
    from tests.support.stores import sqlite_database

    folder = write_workflow(tmp_path)
    (folder / "invoice.yaml").write_text(textwrap.dedent(INVOICE))
    async with serve_asgi(erp.app) as erp_url:
        (folder / "connections.yaml").write_text(
            f"connections:\n  erp: {{type: http, base_url: '{erp_url}'}}\n"
        )
        async with (
            sqlite_database(tmp_path, sqlite_template) as db,
            running_console(db, workflows_dir=folder, SWITCHBOARD_ADMINS=ADMIN) as running,
        ):
            yield running


def run_messages(console: Console) -> tuple[str, str] | None:
    """The run's root message in #general and its run card in the thread (their text)."""
    roots = [m for m in console.slack.messages("general") if "started invoice" in m["text"]]
    if not roots:
        return None
    replies = console.slack.thread("general", roots[0]["ts"])
    card = next((r["text"] for r in replies if r["text"].startswith("Run card")), None)
    return (roots[0]["text"], card) if card else None


async def settled(
    console: Console, found: Callable[[], tuple[str, str] | None], message: str
) -> tuple[str, str]:
    messages = await console.slack.wait_for(found, message=message)
    assert messages is not None
    return messages


async def test_retry_a_failed_run_from_a_chosen_step(
    browser: Browser,  # noqa: F811 - the fixture imported above
    erp_console: Console,
    erp: Erp,
) -> None:
    from playwright.async_api import expect

    console = erp_console
    run_id = await started(console, "alice", "ACME March 1200 EUR", command="invoice")

    def failed() -> tuple[str, str] | None:
        found = run_messages(console)
        return found if found and "HTTP 503" in found[1] else None

    root, card = await settled(console, failed, "Slack did not say the run failed")
    assert root.startswith("Failed at step book")
    assert "\nbook: [erp] POST /invoices: HTTP 503" in card
    erp.up = True

    errors: list[str] = []
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())
    await page.goto(f"{console.url}/console")
    await page.get_by_role("button", name="Continue as Carol Chen (@carol)").click()
    await page.locator("#who", has_text="admin").wait_for()
    await page.goto(f"{console.url}/console/#/run/{run_id}")
    await page.locator("#run-status", has_text="failed").wait_for()
    await expect(page.locator("tr[data-step='book'] .error")).to_contain_text("503")

    await page.locator("#retry-step").select_option("book")
    await page.locator("#action-reason").fill("the ERP is back")
    await page.locator("#retry-run").click()
    await page.locator("#run-status", has_text="succeeded").wait_for()
    await page.locator("tr[data-action='run.retried']").wait_for()
    await expect(page.locator("tr[data-step='done'] td").nth(2)).to_have_text("done")
    assert [b["text"] for b in erp.booked] == ["ACME March 1200 EUR"]

    def finished() -> tuple[str, str] | None:
        found = run_messages(console)
        return found if found and found[0].startswith("Done") and "Done" in found[1] else None

    root, card = await settled(console, finished, "Slack's card did not say done")
    assert "\nbook: POST erp/invoices → 201\ndone: set booked = True" in card
    assert errors == []
    await page.close()
