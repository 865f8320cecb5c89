"""``switchboard demo`` serves the console and signs in against its own emulator: as the
person the sandbox page acts as (the page is this browser's Slack session, so Slack's
authorize page asks that person's consent only), else as the person chosen on the
emulator's Sign in with Slack page (``login_hint`` first)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.sandbox.page_harness import RunningDemo, running_demo

pytestmark = pytest.mark.slow  # the whole demo: emulator, stand-ins, bot


async def consent(
    running: RunningDemo, hint: str = "", login: str = "/console/auth/login"
) -> tuple[str, dict[str, str]]:
    """The console's login, followed to Slack's authorize page: its HTML and parameters."""
    params = {"login_hint": hint} if hint else {}
    answer = await running.http.get(login, params=params)
    authorize = answer.headers["location"]
    assert authorize.startswith(f"{running.url}/openid/connect/authorize?")
    page = await running.http.get(authorize)
    assert page.status_code == 200, page.text
    return page.text, dict(parse_qsl(urlsplit(authorize).query))


async def signed_in_as(running: RunningDemo, params: dict[str, str], user: str) -> str:
    chosen = await running.http.post(
        "/openid/connect/authorize", data=params | {"user": running.slack.user_id(user)}
    )
    done = await running.http.get(chosen.headers["location"])
    assert done.status_code == 303, done.text
    me = (await running.http.get("/console/api/me")).json()
    assert me["user"] == running.slack.user_id(user)
    return str(me["name"])


async def test_the_demo_signs_in_to_its_console_as_the_person_chosen(tmp_path: Path) -> None:
    async with running_demo(tmp_path) as running:
        page, params = await consent(running, hint="dana")
        first = page.index("Continue as")
        assert page.index("Dana Dorsey", first) < page.index("Alice Archer", first)
        assert await signed_in_as(running, params, "dana") == "Dana Dorsey"


async def test_the_demo_signs_in_as_the_sandbox_pages_acting_user(tmp_path: Path) -> None:
    async with running_demo(tmp_path) as running:
        acting = await running.state("dana")  # the page now acts as Dana in this browser
        page, params = await consent(running, login=acting["console"])  # the page's link
        assert page.count("Continue as") == 1 and "Continue as Dana Dorsey (@dana)" in page
        assert await signed_in_as(running, params, "dana") == "Dana Dorsey"

        await running.state("alice")  # switched on the page: the next sign-in follows
        page, params = await consent(running, hint="dana")
        assert page.count("Continue as") == 1 and "Continue as Alice Archer (@alice)" in page
        assert await signed_in_as(running, params, "alice") == "Alice Archer"
