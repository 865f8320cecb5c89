"""Sign in with Slack for the console, for real: the emulator's OpenID Connect endpoints,
slack_sdk's ``openid.connect.token``/``userInfo``, state, nonce and the signed cookies."""

from __future__ import annotations

import httpx

from .harness import Console, cookie_attributes


async def test_sign_in_with_slack_sets_a_signed_http_only_session(console: Console) -> None:
    async with console.client() as http:
        assert (await http.get("/console/api/me")).status_code == 401
        page = await http.get("/console/")
        assert page.status_code == 303 and page.headers["location"] == "/console/auth/login"
        login = await http.get("/console/auth/login")
        location = login.headers["location"]
        assert location.startswith(f"{console.slack.base_url}/openid/connect/authorize?")
        for part in ("scope=openid+profile+email", "response_type=code", "state=", "nonce="):
            assert part in location
        assert "httponly" in cookie_attributes(login, "switchboard_console_login")
        done = await console.sign_in(http, "alice")
        assert done.status_code == 303 and done.headers["location"] == "/console/"
        attributes = cookie_attributes(done, "switchboard_console")
        assert "httponly" in attributes and "samesite=lax" in attributes
        assert "path=/console" in attributes and "secure" not in attributes  # http here
        me = (await http.get("/console/api/me")).json()
        assert me["user"] == console.slack.user_id("alice") and me["name"] == "Alice Archer"
        assert me["admin"] is False and len(me["csrf"]) > 20
        page = await http.get("/console/")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_a_callback_with_another_state_is_refused(console: Console) -> None:
    async with console.client() as http:
        answer = await console.sign_in(http, "alice", state="not-the-state")
        assert answer.status_code == 400 and "state" in answer.text
        assert (await http.get("/console/api/me")).status_code == 401


async def test_an_id_token_with_another_nonce_is_refused(console: Console) -> None:
    async with console.client() as http:
        answer = await console.sign_in(http, "alice", nonce="someone-elses-nonce")
        assert answer.status_code == 400 and "nonce" in answer.text
        assert (await http.get("/console/api/me")).status_code == 401


async def test_a_code_is_good_once_and_a_callback_without_a_login_is_refused(
    console: Console,
) -> None:
    async with console.client() as http:
        login = await http.get("/console/auth/login")
        authorize = login.headers["location"]
        params = dict(httpx.URL(authorize).params)
        chosen = await http.post(
            authorize.split("?")[0], data=params | {"user": console.slack.user_id("bob")}
        )
        callback = chosen.headers["location"]
        assert (await http.get(callback)).status_code == 303
    async with console.client() as stranger:  # no login cookie: the code alone is not enough
        answer = await stranger.get(callback)
        assert answer.status_code == 400 and "did not start here" in answer.text


async def test_an_altered_session_cookie_is_refused(console: Console) -> None:
    async with console.signed_in("dave") as http:
        value = http.cookies["switchboard_console"]
        body, mac = value.split(".")
        forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
        http.cookies.clear()
        http.cookies.set("switchboard_console", forged, path="/console")
        assert (await http.get("/console/api/me")).status_code == 401


async def test_other_hosts_origins_and_tokenless_actions_are_refused(console: Console) -> None:
    async with console.signed_in("alice") as http:
        assert (
            await http.get("/console/api/me", headers={"Host": "evil.example"})
        ).status_code == 403
        cross = await http.post(
            "/console/api/runs/x/cancel", json={}, headers={"Origin": "https://evil.example"}
        )
        assert cross.status_code == 403 and "cross-origin" in cross.json()["error"]
        form = await http.post(
            "/console/api/runs/x/cancel",
            content=b"a=1",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 415
        token = http.headers.pop("X-CSRF-Token")
        assert (await http.post("/console/api/runs/x/cancel", json={})).status_code == 403
        http.headers["X-CSRF-Token"] = token
        assert (await http.post("/console/api/runs/x/cancel", json={})).status_code == 404


def test_cookies_are_secure_when_the_console_is_served_over_https() -> None:
    from starlette.responses import Response

    from bot.console.config import console_config
    from bot.console.session import CookieSigner
    from bot.settings import load_settings

    config = console_config(
        load_settings(
            SLACK_CLIENT_ID="1.2",
            SLACK_CLIENT_SECRET="client-secret-for-https-test",
            SWITCHBOARD_CONSOLE_URL="https://bot.example.com/",
        )
    )
    assert config.redirect_uri == "https://bot.example.com/console/auth/callback"
    assert config.host == "bot.example.com" and config.secure
    signer = CookieSigner(config.secret, secure=config.secure, session_seconds=60)
    response = Response()
    signer.set_session(response, signer.new_session("U1", "T1", "Someone"))
    header = response.headers["set-cookie"].lower()
    assert "secure" in header and "httponly" in header and "samesite=lax" in header
