"""The sandbox page in a real Chromium (Playwright): people type and click, the bot
answers through signed requests, and the page shows it. Screenshots go to
``artifacts/screenshots/``.

Needs ``pip install playwright`` and a system Chromium at /usr/bin/chromium
(Debian: ``apt-get install chromium``); without them these tests skip, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from sandbox.slack import SlackEmulator
from sandbox.slack.page import SandboxPage
from tests.support.servers import serve_asgi

from .conftest import Receiver
from .page_harness import RunningDemo, running_demo

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("SWITCHBOARD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    try:
        from playwright.async_api import Error, async_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; no browser download)")
    async with async_playwright() as playwright:
        try:
            launched = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
        except Error as exc:
            pytest.skip(f"Chromium at {CHROMIUM} would not start: {exc.message.splitlines()[0]}")
        yield launched
        await launched.close()


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningDemo]:
    async with running_demo(tmp_path) as demo:
        yield demo


async def open_page(
    browser: Browser, url: str, fragment: str, errors: list[str] | None = None
) -> Page:
    """Open the page as the fragment says; script errors and alert()s go to ``errors``."""
    page = await browser.new_page(viewport={"width": 1400, "height": 860})
    seen = errors if errors is not None else []
    page.on("pageerror", lambda exc: seen.append(str(exc)))
    page.on("dialog", lambda dialog: seen.append(f"dialog: {dialog.message}"))
    await page.goto(f"{url}/#{fragment}")
    await page.wait_for_selector("#live.on")  # the live event stream is connected
    return page


async def shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    await page.screenshot(path=str(path))
    return path


async def test_flow_hello_typed_in_general_shows_the_run_and_its_thread(
    browser: Browser, running: RunningDemo
) -> None:
    errors: list[str] = []
    page = await open_page(browser, running.url, "user=alice&view=general", errors)
    assert await page.locator("#user-switch").input_value() == "alice"
    # The walkthrough's first tip puts the command in the composer; Enter runs it.
    await page.locator("#guide .tip", has_text="Say hello").click()
    composer = page.locator("#composer-input")
    assert await composer.input_value() == "/flow hello world"
    assert "threads every step" in await page.locator("#composer-hint").inner_text()
    await composer.press("Enter")

    root = page.locator("#messages .msg[data-kind='message']", has_text="started Hello world")
    await root.wait_for()
    assert "@alice" in await root.inner_text()
    await page.locator("#messages .msg.ephemeral", has_text="Only visible to you").wait_for()
    summary = root.locator(".thread-summary", has_text="2 replies")  # the run card, the reply
    await summary.wait_for()
    await summary.click()

    thread = page.locator("#thread")
    await thread.locator(".msg", has_text="Hello, world! (1 word)").wait_for()
    assert await thread.locator(".msg", has_text="greet").count() == 1
    assert await thread.locator(".bk-context", has_text="audit · post").count() == 1
    await page.locator("#dev-toggle").click()
    await page.locator("#devlog .dev-title", has_text="slash_command /flow hello world").wait_for()
    await page.locator("#devlog .dev-title", has_text="chat.postMessage").first.wait_for()
    await shot(page, "hello-thread.png")
    assert errors == []


async def test_buttons_confirm_and_click_as_another_user(
    browser: Browser, running: RunningDemo
) -> None:
    client = AsyncWebClient(token=running.slack.bot_token, base_url=running.slack.api_url)
    await client.chat_postMessage(
        channel="#finance-approvals",
        text="Invoice",
        blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": "Invoice INV-7"}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*ACME* asks for *1,200 EUR*"},
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": f"*Requester*\n<@{running.slack.user_id('alice')}>",
                    },
                    {"type": "mrkdwn", "text": "*PO*\n`PO-9`"},
                ],
            },
            {"type": "divider"},
            {
                "type": "actions",
                "block_id": "decide",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "probe_approve",
                        "style": "primary",
                        "value": "approve",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "confirm": {
                            "title": {"type": "plain_text", "text": "Approve INV-7?"},
                            "text": {"type": "mrkdwn", "text": "This books *1,200 EUR*."},
                            "confirm": {"type": "plain_text", "text": "Yes, approve"},
                            "deny": {"type": "plain_text", "text": "Not yet"},
                        },
                    },
                    {
                        "type": "button",
                        "action_id": "probe_reject",
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Reject"},
                    },
                ],
            },
        ],
    )
    page = await open_page(browser, running.url, "user=alice&view=finance-approvals")
    await page.locator("#user-switch").select_option("dana")
    card = page.locator("#messages .msg", has_text="Invoice INV-7")
    await card.wait_for()
    assert await card.locator(".bk-fields .mention", has_text="@alice").count() == 1
    assert await card.locator(".bk-btn.primary", has_text="Approve").count() == 1
    assert await card.locator(".bk-btn.danger", has_text="Reject").count() == 1

    await card.locator(".bk-btn", has_text="Approve").click()
    dialog = page.locator(".modal.confirm")
    await dialog.wait_for()
    assert "This books 1,200 EUR." in await dialog.inner_text()
    await dialog.locator(".bk-btn", has_text="Yes, approve").click()

    dana = running.slack.user_id("dana")

    def clicked() -> dict[str, Any] | None:
        for delivery in running.slack.deliveries("block_actions"):
            if delivery.payload["user"]["id"] == dana:
                return dict(delivery.payload)
        return None

    payload = await running.slack.wait_for(clicked, message="Dana's click never reached the bot")
    assert payload is not None
    assert payload["actions"][0]["action_id"] == "probe_approve"
    await shot(page, "card-as-dana.png")


async def test_markup_in_messages_is_shown_as_text(browser: Browser, running: RunningDemo) -> None:
    client = AsyncWebClient(token=running.slack.bot_token, base_url=running.slack.api_url)
    await client.chat_postMessage(
        channel="#general",
        text="x",
        blocks=[
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*bold* _it_ `code` <https://example.com|a link> "
                    "<javascript:window.__xss=1|bad link> "
                    "&lt;img src=x onerror=window.__xss=2&gt;",
                },
            }
        ],
    )
    await running.act(
        "message",
        user="bob",
        channel="general",
        text='<img src=x onerror="window.__xss=3"><script>window.__xss=4</script>',
    )
    errors: list[str] = []
    page = await open_page(browser, running.url, "user=alice&view=general", errors)
    bot_message = page.locator("#messages .msg", has_text="bold")
    await bot_message.wait_for()
    await page.locator("#messages .msg", has_text="<script>").wait_for()
    content = page.locator("#messages .msg-content")
    assert await content.locator("b", has_text="bold").count() == 1
    assert await content.locator("i", has_text="it").count() == 1
    assert await content.locator("code", has_text="code").count() == 1
    assert await content.locator("a[href='https://example.com']").count() == 1
    assert await content.locator("a[href^='javascript']").count() == 0
    assert await content.locator("img, script").count() == 0
    assert "<img src=x" in await bot_message.inner_text()
    assert await page.evaluate("window.__xss") is None
    assert errors == []


# ---------------------------------------------------------------- a modal, with a stand-in bot


@contextlib.asynccontextmanager
async def page_server(emulator: SlackEmulator) -> AsyncIterator[str]:
    page = SandboxPage(emulator)
    async with serve_asgi(Starlette(routes=[*emulator.asgi_app.routes, *page.routes])) as url:
        try:
            yield url
        finally:
            page.close()  # ends the browser's event stream, so the server can stop


async def test_modal_shows_errors_under_the_right_field(
    browser: Browser, emulator: SlackEmulator, receiver: Receiver, client: AsyncWebClient
) -> None:
    async with page_server(emulator) as url:
        page = await open_page(browser, url, "user=alice&view=general")
        async with httpx.AsyncClient(base_url=url) as http:
            await http.post(
                "/sandbox/act/command",
                json={"user": "alice", "channel": "general", "text": "/flow reject"},
            )
        await client.views_open(
            trigger_id=receiver.requests[-1].form["trigger_id"],
            view={
                "type": "modal",
                "callback_id": "reject",
                "title": {"type": "plain_text", "text": "Reject invoice"},
                "submit": {"type": "plain_text", "text": "Reject"},
                "close": {"type": "plain_text", "text": "Cancel"},
                "blocks": [
                    {
                        "type": "input",
                        "block_id": "reason",
                        "label": {"type": "plain_text", "text": "Reason"},
                        "element": {
                            "type": "plain_text_input",
                            "action_id": "text",
                            "multiline": True,
                        },
                    },
                    {
                        "type": "input",
                        "block_id": "category",
                        "label": {"type": "plain_text", "text": "Category"},
                        "element": {
                            "type": "static_select",
                            "action_id": "pick",
                            "options": [
                                {
                                    "text": {"type": "plain_text", "text": "Wrong amount"},
                                    "value": "amount",
                                },
                                {"text": {"type": "plain_text", "text": "No PO"}, "value": "po"},
                            ],
                        },
                    },
                ],
            },
        )
        modal = page.locator(".modal[role='dialog']")
        await modal.wait_for()
        await modal.locator(".bk-btn.primary", has_text="Reject").click()
        # Slack's client refuses empty required inputs before anything is sent.
        assert await modal.locator(".bk-error").count() == 2

        await modal.locator("#in-reason").fill("no")
        await modal.locator("#in-category").select_option("po")
        receiver.answer(body={"response_action": "errors", "errors": {"reason": "Say more"}})
        await modal.locator(".bk-btn.primary", has_text="Reject").click()
        error = modal.locator("[data-block-id='reason'] .bk-error", has_text="Say more")
        await error.wait_for()
        assert await modal.locator("[data-block-id='category'] .bk-error").count() == 0
        assert await modal.locator("#in-reason").input_value() == "no"  # kept across redraws
        submitted = receiver.requests[-1].payload
        assert (
            submitted["view"]["state"]["values"]["category"]["pick"]["selected_option"]["value"]
            == "po"
        )
        await shot(page, "modal-errors.png")

        await modal.locator(".bk-btn", has_text="Cancel").click()
        await modal.wait_for(state="detached")


async def test_reaction_and_message_shortcut_from_the_message_toolbar(
    browser: Browser, running: RunningDemo
) -> None:
    await running.act("message", user="bob", channel="it-help", text="My laptop will not boot")
    page = await open_page(browser, running.url, "user=carol&view=it-help")
    message = page.locator("#messages .msg", has_text="My laptop will not boot")
    await message.hover()
    await message.get_by_role("button", name="Add reaction").click()
    await message.locator(".pick[title=':eyes:']").click()
    await message.locator(".reaction.mine", has_text="1").wait_for()

    await message.hover()
    await message.get_by_role("button", name="More actions").click()
    await message.locator(".menu-item", has_text="Send to Switchboard").click()

    def shortcut() -> bool:
        return any(
            d.payload["callback_id"] == "send_to_switchboard"
            and d.payload["user"]["id"] == running.slack.user_id("carol")
            for d in running.slack.deliveries("message_action")
        )

    await running.slack.wait_for(shortcut, message="the shortcut never reached the bot")
    reacted = running.slack.deliveries("event_callback")
    assert any(d.payload["event"]["type"] == "reaction_added" for d in reacted)


ATTACKER_PAGE = """<!doctype html><title>loading</title><script>
const attempts = [
  {headers: {"Content-Type": "text/plain"}},  // a "simple" request: no preflight
  {headers: {"Content-Type": "application/json"}},  // no-cors drops it: text/plain again
];
Promise.allSettled(attempts.map((extra) => fetch("%(target)s/sandbox/act/command", {
  method: "POST", mode: "no-cors", ...extra,
  body: JSON.stringify({user: "alice", channel: "general", text: "/flow hello from evil"}),
}))).then(() => { document.title = "tried"; });
</script>"""


async def test_another_web_page_in_the_browser_cannot_act_as_people(
    browser: Browser, running: RunningDemo
) -> None:
    # A page from another origin (another port on loopback, as a malicious site would be)
    # posts to the demo; the browser sends it, and the demo must refuse it.
    async def attacker(_request: Any) -> HTMLResponse:
        return HTMLResponse(ATTACKER_PAGE % {"target": running.url})

    async with serve_asgi(Starlette(routes=[Route("/", attacker)])) as evil_url:
        page = await browser.new_page()
        await page.goto(evil_url)
        await page.wait_for_function("document.title === 'tried'")
        await page.close()
    await asyncio.sleep(0.5)  # a delivered command would have been posted by now
    deliveries = [e for e in running.demo.page.devlog.entries(0) if e.get("kind") == "delivery"]
    assert deliveries == []
    general = next(c for c in (await running.state("alice"))["channels"] if c["name"] == "general")
    texts = [
        m.get("text", "") for m in (await running.state("alice"))["messages"].get(general["id"], [])
    ]
    assert not [t for t in texts if "hello from evil" in t or "started Hello" in t]
