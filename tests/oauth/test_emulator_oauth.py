"""The emulator's OAuth v2 install, as Slack serves it, through real HTTP and slack_sdk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import yaml
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.oauth import BOT_SCOPES
from sandbox.slack.oauth import SlackWorkspaces
from tests.oauth.workspaces import CLIENT_ID, CLIENT_SECRET, TEAM_A, TEAM_B, registration, seeds
from tests.support.servers import serve_asgi

REDIRECT = "https://bot.example.com/slack/oauth_redirect"


@pytest.fixture
async def slack() -> AsyncIterator[SlackWorkspaces]:
    workspaces = SlackWorkspaces("secret", seeds(), registration(REDIRECT))
    async with serve_asgi(workspaces) as url:
        workspaces.base_url = url
        yield workspaces
    await workspaces.aclose()


async def consent(slack: SlackWorkspaces, team: str, user: str, state: str = "s1") -> str:
    """The person opens the authorize URL and clicks Allow: the code sent to the redirect."""
    params = {"client_id": CLIENT_ID, "scope": "chat:write,commands", "redirect_uri": REDIRECT}
    async with httpx.AsyncClient() as http:
        page = await http.get(slack.authorize_url, params=params | {"state": state})
        assert page.status_code == 200 and "Allow in Acme as Alice of Acme" in page.text
        click = await http.post(
            slack.authorize_url, data=params | {"state": state, "team": team, "user": user}
        )
    assert click.status_code == 302
    location = urlparse(click.headers["location"])
    assert location.path == "/slack/oauth_redirect"
    query = parse_qs(location.query)
    assert query["state"] == [state]
    return query["code"][0]


async def test_two_installs_each_token_is_its_own_workspace(slack: SlackWorkspaces) -> None:
    api = AsyncWebClient(base_url=slack.api_url)
    tokens = {}
    for team, user in ((TEAM_A, "UACMEALICE"), (TEAM_B, "UBETABOB")):
        code = await consent(slack, team, user)
        answer = await api.oauth_v2_access(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code, redirect_uri=REDIRECT
        )
        assert answer["team"]["id"] == team and answer["token_type"] == "bot"
        assert answer["authed_user"]["id"] == user
        assert answer["expires_in"] == 43200 and answer["refresh_token"].startswith("xoxe-1-")
        tokens[team] = answer
    for team, answer in tokens.items():
        who = await api.auth_test(token=answer["access_token"])
        assert who["team_id"] == team and who["user_id"] == answer["bot_user_id"]
    with pytest.raises(SlackApiError, match="invalid_code"):
        await api.oauth_v2_access(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code, redirect_uri=REDIRECT
        )


async def test_refresh_after_expiry_and_uninstall_revokes(slack: SlackWorkspaces) -> None:
    api = AsyncWebClient(base_url=slack.api_url)
    code = await consent(slack, TEAM_A, "UACMECAROL")
    first = await api.oauth_v2_access(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code, redirect_uri=REDIRECT
    )
    slack.expire_tokens(TEAM_A)
    with pytest.raises(SlackApiError, match="token_expired"):
        await api.auth_test(token=first["access_token"])
    fresh = await api.oauth_v2_access(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        grant_type="refresh_token",
        refresh_token=first["refresh_token"],
    )
    assert fresh["access_token"] != first["access_token"]
    assert (await api.auth_test(token=fresh["access_token"]))["team_id"] == TEAM_A
    await slack.uninstall(TEAM_A)  # no request URL: the events are not delivered
    with pytest.raises(SlackApiError, match="invalid_auth"):
        await api.auth_test(token=fresh["access_token"])
    with pytest.raises(SlackApiError, match="invalid_refresh_token"):
        await api.oauth_v2_access(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            grant_type="refresh_token",
            refresh_token=first["refresh_token"],
        )


async def test_consent_refuses_unknown_redirects_and_denial_keeps_state(
    slack: SlackWorkspaces,
) -> None:
    async with httpx.AsyncClient() as http:
        bad = await http.get(
            slack.authorize_url,
            params={"client_id": CLIENT_ID, "scope": "chat:write", "redirect_uri": "https://evil/"},
        )
        assert bad.status_code == 400 and "bad_redirect_uri" in bad.text
        denied = await http.post(
            slack.authorize_url,
            data={"client_id": CLIENT_ID, "scope": "chat:write", "state": "s9", "deny": "1"},
        )
    assert denied.status_code == 302
    assert parse_qs(urlparse(denied.headers["location"]).query) == {
        "state": ["s9"],
        "error": ["access_denied"],
    }


def test_an_install_asks_for_the_manifests_bot_scopes() -> None:
    manifest = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())
    assert set(BOT_SCOPES) == set(manifest["oauth_config"]["scopes"]["bot"])
    assert (
        "https://switchboard.example.com/slack/oauth_redirect"
        in (manifest["oauth_config"]["redirect_urls"])
    )
