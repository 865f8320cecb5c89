"""``switchboard demo`` serves the console and signs in against its own emulator: the
person chosen on the emulator's Sign in with Slack page (``login_hint``: the one the
sandbox page acts as comes first)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.sandbox.page_harness import running_demo

pytestmark = pytest.mark.slow  # the whole demo: emulator, stand-ins, bot


async def test_the_demo_signs_in_to_its_console_as_the_person_chosen(tmp_path: Path) -> None:
    async with running_demo(tmp_path) as running:
        http = running.http
        login = await http.get("/console/auth/login", params={"login_hint": "dana"})
        authorize = login.headers["location"]
        assert authorize.startswith(f"{running.url}/openid/connect/authorize?")
        page = await http.get(authorize)
        first = page.text.index("Continue as")
        assert page.text.index("Dana Dorsey", first) < page.text.index("Alice Archer", first)
        params = dict(parse_qsl(urlsplit(authorize).query))
        chosen = await http.post(
            "/openid/connect/authorize", data=params | {"user": running.slack.user_id("dana")}
        )
        done = await http.get(chosen.headers["location"])
        assert done.status_code == 303, done.text
        me = (await http.get("/console/api/me")).json()
        assert me["user"] == running.slack.user_id("dana") and me["name"] == "Dana Dorsey"
