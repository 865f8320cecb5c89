"""Every connector's requests stay under its base URL: one check in the transport covers all.

Two real loopback servers: ``api`` is the connection's own system, ``other`` a host its
credentials must never reach. Each refusal happens before a byte is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.config import GithubConfig, HttpConfig, JiraConfig, WebhookOutConfig
from connectors.errors import ConnectorRejected
from connectors.github import GithubConnector
from connectors.http import HttpConnector, Pagination
from connectors.jira import JiraConnector
from connectors.webhook_out import WebhookOutConnector
from tests.connectors.conftest import FAST_RETRY, Call, FakeApi, Reply
from tests.support.servers import serve_asgi

ENV = {
    "ERP_TOKEN": "erp-s3cret",
    "JIRA_TOKEN": "jira-s3cret",
    "GH_TOKEN": "ghp_s3cret",
    "HOOK_SECRET": "hook-s3cret",
}
LEAVES = "URL leaves the connection's base_url"


@pytest.fixture
async def other() -> AsyncIterator[FakeApi]:
    fake = FakeApi()
    async with serve_asgi(fake.app) as base_url:
        fake.base_url = base_url
        yield fake


@pytest.fixture
async def erp(api: FakeApi) -> AsyncIterator[HttpConnector]:
    """An http connection whose base_url has a path prefix: /api/v2."""
    config = HttpConfig(base_url=f"{api.base_url}/api/v2", token_env="ERP_TOKEN", retry=FAST_RETRY)
    connector = HttpConnector.from_config("erp", config, ENV)
    yield connector
    await connector.aclose()


async def test_an_absolute_url_to_another_host_is_refused_before_sending(
    api: FakeApi, other: FakeApi, erp: HttpConnector
) -> None:
    with pytest.raises(ConnectorRejected, match=LEAVES) as refused:
        await erp.request("GET", f"{other.base_url}/x")
    assert not refused.value.retryable
    assert other.calls == []
    assert all(call.path.startswith("/api/v2/") for call in api.calls)


@pytest.mark.parametrize(
    "path",
    ["/../admin", "/x/../../admin", "/%2e%2e/admin", "/..%2F..%2Fadmin", "/a/%2E/b", "/a%5C..%5Cb"],
)
async def test_dot_segments_never_climb_out_of_the_base_path(
    api: FakeApi, erp: HttpConnector, path: str
) -> None:
    with pytest.raises(ConnectorRejected, match=LEAVES):
        await erp.request("GET", path)
    assert api.calls == []


async def test_the_base_path_is_a_prefix_at_a_segment_boundary(
    api: FakeApi, erp: HttpConnector
) -> None:
    for outside in ("/api/v20/x", "/api/v2x", "/admin/users"):
        with pytest.raises(ConnectorRejected, match=LEAVES):
            await erp.request("GET", f"{api.base_url}{outside}")
    assert api.calls == []
    inside = await erp.request("GET", f"{api.base_url}/api/v2/x")
    relative = await erp.request("GET", "/y", query={"q": "a/../b?c#d"})
    assert (inside.status_code, relative.status_code) == (200, 200)
    assert [c.path for c in api.calls] == ["/api/v2/x", "/api/v2/y"]
    assert api.calls[1].query == {"q": "a/../b?c#d"}


async def test_a_next_link_to_another_host_is_not_followed_with_credentials(
    api: FakeApi, other: FakeApi, erp: HttpConnector
) -> None:
    link = f'<{other.base_url}/api/v2/items?page=2>; rel="next"'
    api.script("/api/v2/items", Reply(json=[1], headers={"Link": link}))
    with pytest.raises(ConnectorRejected, match=LEAVES):
        await erp.paginate("/items", Pagination(mode="link"))
    assert other.calls == []


@pytest.mark.parametrize("target", ["/admin/users", "/api/v20/items", "/api/v2/../admin"])
async def test_a_next_link_outside_the_base_path_is_not_followed(
    api: FakeApi, erp: HttpConnector, target: str
) -> None:
    link = f'<{api.base_url}{target}?page=2>; rel="next"'
    api.script("/api/v2/items", Reply(json=[1], headers={"Link": link}))
    with pytest.raises(ConnectorRejected, match=LEAVES):
        await erp.paginate("/items", Pagination(mode="link"))
    assert [c.path for c in api.calls] == ["/api/v2/items"]


async def test_a_hostile_cursor_stays_a_query_value(api: FakeApi, erp: HttpConnector) -> None:
    hostile = f"../../admin?role=admin#{api.base_url}/x"

    def pages(call: Call, _base: str) -> Reply:
        nxt = hostile if "cursor" not in call.query else None
        return Reply(json={"items": [call.query.get("cursor", "first")], "next": nxt})

    api.handle("/api/v2/things", pages)
    spec = Pagination(mode="cursor", items="items", cursor_path="next")
    result = await erp.paginate("/things", spec)
    assert result.items == ["first", hostile]
    assert [c.path for c in api.calls] == ["/api/v2/things", "/api/v2/things"]
    assert api.calls[1].query == {"cursor": hostile}


async def test_jira_links_and_requests_stay_under_a_base_path(api: FakeApi, other: FakeApi) -> None:
    config = JiraConfig(base_url=f"{api.base_url}/jira", token_env="JIRA_TOKEN", retry=FAST_RETRY)
    jira = JiraConnector.from_config("jira", config, ENV)
    api.script("/jira/rest/api/2/issue", Reply(201, json={"id": "10001", "key": "OPS-7"}))
    try:
        issue = await jira.create_issue("OPS", "Printer on fire")
        with pytest.raises(ConnectorRejected, match=LEAVES):
            await jira.transport.send("GET", f"{other.base_url}/rest/api/2/myself")
    finally:
        await jira.aclose()
    assert issue.url == f"{api.base_url}/jira/browse/OPS-7"
    assert [c.path for c in api.calls] == ["/jira/rest/api/2/issue"]
    assert other.calls == []


async def test_github_dot_repository_names_and_other_hosts_are_refused(
    api: FakeApi, other: FakeApi
) -> None:
    config = GithubConfig(base_url=f"{api.base_url}/api/v3", token_env="GH_TOKEN", repo="acme/app")
    github = GithubConnector.from_config("gh", config, ENV)
    created = {"id": 1, "number": 5, "html_url": "https://github.example/acme/app/issues/5"}
    api.script("/api/v3/repos/acme/app/issues", Reply(201, json=created))
    try:
        await github.create_issue("Broken build")
        for repo in ("acme/.", "./app"):  # /repos/acme/./issues is /repos/acme/issues
            with pytest.raises(ConnectorRejected, match="not an owner/name repository"):
                await github.comment(5, "hi", repo=repo)
        with pytest.raises(ConnectorRejected, match=LEAVES):
            await github.transport.send("GET", f"{other.base_url}/api/v3/user")
    finally:
        await github.aclose()
    assert [c.path for c in api.calls] == ["/api/v3/repos/acme/app/issues"]
    assert other.calls == []


async def test_webhook_out_sends_only_to_its_target_and_never_names_it(
    api: FakeApi, other: FakeApi
) -> None:
    target = f"{api.base_url}/hooks/T0/B0/xyz"
    config = WebhookOutConfig(url_env="HOOK_URL", secret_env="HOOK_SECRET", retry=FAST_RETRY)
    hook = WebhookOutConnector.from_config("hook", config, {**ENV, "HOOK_URL": target})
    try:
        sent = await hook.post({"ok": True})
        for elsewhere in (f"{target}extra", f"{api.base_url}/hooks/T0", f"{other.base_url}/x"):
            with pytest.raises(ConnectorRejected, match=LEAVES) as refused:
                await hook.transport.send("POST", elsewhere, json={"ok": True})
            assert "/hooks/T0/B0/xyz" not in str(refused.value)
    finally:
        await hook.aclose()
    assert sent.status_code == 200
    assert [c.path for c in api.calls] == ["/hooks/T0/B0/xyz"]
    assert other.calls == []
