"""jira, github and webhook_out connectors against the scriptable loopback API."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.config import GithubConfig, JiraConfig, WebhookOutConfig
from connectors.errors import ConnectorConfigError, ConnectorRejected, ConnectorUnavailable
from connectors.github import GithubConnector, comment_marker
from connectors.jira import JiraConnector
from connectors.webhook_out import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookOutConnector,
    sign,
    verify,
)
from tests.connectors.conftest import FAST_RETRY, Call, FakeApi, Reply

ENV = {"JIRA_TOKEN": "jira-s3cret", "GH_TOKEN": "ghp_s3cret", "HOOK_SECRET": "hook-s3cret"}


@pytest.fixture
async def jira(api: FakeApi) -> AsyncIterator[JiraConnector]:
    config = JiraConfig(
        base_url=api.base_url, username="bot@example.com", token_env="JIRA_TOKEN", retry=FAST_RETRY
    )
    connector = JiraConnector.from_config("jira", config, ENV)
    yield connector
    await connector.aclose()


async def test_jira_create_issue_v2(api: FakeApi, jira: JiraConnector) -> None:
    api.script("/rest/api/2/issue", Reply(201, json={"id": "10001", "key": "OPS-7"}))

    issue = await jira.create_issue(
        "OPS", "Printer on fire", description="Floor 3", fields={"labels": ["facilities"]}
    )

    assert (issue.key, issue.id) == ("OPS-7", "10001")
    assert issue.url == f"{api.base_url}/browse/OPS-7"
    call = api.calls[0]
    expected = base64.b64encode(b"bot@example.com:jira-s3cret").decode()
    assert call.headers["authorization"] == f"Basic {expected}"
    assert call.json() == {
        "fields": {
            "project": {"key": "OPS"},
            "summary": "Printer on fire",
            "issuetype": {"name": "Task"},
            "description": "Floor 3",
            "labels": ["facilities"],
        }
    }


async def test_jira_v3_comment_is_atlassian_document_with_bearer_token(api: FakeApi) -> None:
    config = JiraConfig(base_url=api.base_url, token_env="JIRA_TOKEN", api_version=3)
    jira = JiraConnector.from_config("jira", config, ENV)
    api.script("/rest/api/3/issue/OPS-7/comment", Reply(201, json={"id": "555"}))
    try:
        comment = await jira.comment("OPS-7", "First line\n\nSecond paragraph")
    finally:
        await jira.aclose()
    assert comment.id == "555" and comment.url.endswith("/browse/OPS-7?focusedCommentId=555")
    call = api.calls[0]
    assert call.headers["authorization"] == "Bearer jira-s3cret"
    body = call.json()["body"]
    assert body["type"] == "doc"
    assert [p["content"][0]["text"] for p in body["content"]] == ["First line", "Second paragraph"]


async def test_jira_transition_by_name_looks_up_the_id(api: FakeApi, jira: JiraConnector) -> None:
    transitions = {
        "transitions": [
            {"id": "11", "name": "Start progress", "to": {"name": "In Progress"}},
            {"id": "31", "name": "Resolve", "to": {"name": "Done"}},
        ]
    }
    path = "/rest/api/2/issue/OPS-7/transitions"
    api.script(path, Reply(json=transitions), Reply(204, body=b""))
    assert await jira.transition("OPS-7", "done") == "31"
    assert [c.method for c in api.calls_to(path)] == ["GET", "POST"]
    assert api.calls_to(path)[1].json() == {"transition": {"id": "31"}}

    api.script(path, Reply(json=transitions))
    api.script("/rest/api/2/issue/OPS-7", Reply(json={"fields": {"status": {"name": "To Do"}}}))
    with pytest.raises(ConnectorRejected, match="available: Resolve, Start progress"):
        await jira.transition("OPS-7", "Reopen")


async def test_jira_transition_to_the_status_it_is_in_is_done(
    api: FakeApi, jira: JiraConnector
) -> None:
    """A retried transition whose first answer was lost: the issue is there already."""
    path = "/rest/api/2/issue/OPS-7/transitions"
    api.script(path, Reply(json={"transitions": [{"id": "41", "name": "Reopen", "to": {}}]}))
    api.script("/rest/api/2/issue/OPS-7", Reply(json={"fields": {"status": {"name": "Done"}}}))
    assert await jira.transition("OPS-7", "done") == ""
    assert [c.method for c in api.calls_to(path)] == ["GET"]


async def test_jira_finds_an_issue_by_label_and_a_comment_by_its_property(
    api: FakeApi, jira: JiraConnector
) -> None:
    api.script("/rest/api/2/search", Reply(json={"issues": [{"id": "9", "key": "OPS-9"}]}))
    found = await jira.find_by_label("switchboard-abc")
    assert found is not None and found.key == "OPS-9"
    assert api.calls[0].query["jql"] == 'labels = "switchboard-abc" ORDER BY created ASC'
    with pytest.raises(ConnectorRejected, match="not a plain label"):
        await jira.find_by_label('x" OR project = SECRET')

    comments = {
        "comments": [
            {"id": "1", "properties": []},
            {"id": "2", "properties": [{"key": "switchboard", "value": {"key": "r1:note"}}]},
        ]
    }
    api.script("/rest/api/2/issue/OPS-9/comment", Reply(json=comments))
    comment = await jira.find_comment("OPS-9", "r1:note")
    assert comment is not None and comment.id == "2"
    api.script("/rest/api/2/issue/OPS-9/comment", Reply(json={"comments": []}))
    assert await jira.find_comment("OPS-9", "r1:note") is None


async def test_github_finds_an_issue_by_label_and_a_comment_by_its_marker(api: FakeApi) -> None:
    config = GithubConfig(base_url=api.base_url, token_env="GH_TOKEN", repo="acme/app")
    github = GithubConnector.from_config("gh", config, ENV)
    issues = [
        {"id": 5, "number": 2, "html_url": "u/pull/2", "pull_request": {}},
        {"id": 7, "number": 3, "html_url": "u/issues/3"},
    ]
    api.script("/repos/acme/app/issues", Reply(json=issues))
    found = await github.find_by_label("switchboard-abc")
    assert found is not None and found.key == "acme/app#3"
    assert api.calls[0].query["labels"] == "switchboard-abc"
    assert api.calls[0].query["state"] == "all"

    marked = [{"id": 8, "html_url": "c8", "body": f"hi\n\n{comment_marker('r1:note')}"}]
    api.script("/repos/acme/app/issues/3/comments", Reply(json=marked))
    comment = await github.find_comment(3, "r1:note")
    assert comment is not None and comment.id == "8"
    await github.aclose()


async def test_jira_refuses_keys_that_are_not_keys(api: FakeApi, jira: JiraConnector) -> None:
    with pytest.raises(ConnectorRejected, match="not a Jira issue key"):
        await jira.comment("../../admin", "hi")
    assert api.calls == []


async def test_jira_create_is_not_repeated_after_a_500(api: FakeApi, jira: JiraConnector) -> None:
    api.script("/rest/api/2/issue", Reply(500), Reply(201, json={"id": "1", "key": "OPS-1"}))
    with pytest.raises(ConnectorUnavailable):
        await jira.create_issue("OPS", "x")
    assert len(api.calls) == 1  # Jira may have created it; the engine decides, not a blind retry


async def test_github_issue_and_comment(api: FakeApi) -> None:
    config = GithubConfig(base_url=api.base_url, token_env="GH_TOKEN", repo="acme/app")
    github = GithubConnector.from_config("gh", config, ENV)
    html = "https://github.example/acme/app/issues/34"
    api.script("/repos/acme/app/issues", Reply(201, json={"id": 9, "number": 34, "html_url": html}))
    api.script(
        "/repos/acme/app/issues/34/comments",
        Reply(201, json={"id": 77, "html_url": html + "#issuecomment-77"}),
    )
    try:
        issue = await github.create_issue("Bug", "Steps…", labels=["bug"])
        comment = await github.comment(34, "Looking")
        with pytest.raises(ConnectorRejected, match="owner/name"):
            await github.create_issue("x", repo="../etc")
    finally:
        await github.aclose()

    assert (issue.key, issue.url) == ("acme/app#34", html)
    assert comment.id == "77"
    first = api.calls[0]
    assert first.headers["authorization"] == "Bearer ghp_s3cret"
    assert first.headers["accept"] == "application/vnd.github+json"
    assert first.headers["x-github-api-version"] == "2022-11-28"
    assert first.json() == {"title": "Bug", "body": "Steps…", "labels": ["bug"]}


def test_github_defaults_to_the_public_api() -> None:
    github = GithubConnector.from_config("gh", GithubConfig(token_env="GH_TOKEN"), ENV)
    assert str(github.transport.base_url) == "https://api.github.com"
    with pytest.raises(ConnectorConfigError, match="no default repo"):
        github._repo(None)


async def test_webhook_out_signs_timestamp_and_exact_body(api: FakeApi) -> None:
    seen: list[Call] = []

    def receiver(call: Call, _base: str) -> Reply:
        seen.append(call)
        ok = verify(
            "hook-s3cret",
            call.headers[TIMESTAMP_HEADER.lower()],
            call.body,
            call.headers[SIGNATURE_HEADER.lower()],
        )
        return Reply(200 if ok else 401, json={"verified": ok})

    api.handle("/hooks/in", receiver)
    config = WebhookOutConfig(url_env="HOOK_URL", secret_env="HOOK_SECRET", retry=FAST_RETRY)
    hook = WebhookOutConnector.from_config(
        "hook", config, {**ENV, "HOOK_URL": f"{api.base_url}/hooks/in"}
    )
    try:
        payload: dict[str, Any] = {"run": "r1", "amount": 12.5, "note": "café"}
        result = await hook.post(payload, idempotency_key="r1:notify")
    finally:
        await hook.aclose()

    assert result.data == {"verified": True}
    call = seen[0]
    assert json.loads(call.body) == payload
    assert call.headers["idempotency-key"] == "r1:notify"
    assert call.headers[SIGNATURE_HEADER.lower()].startswith("sha256=")
    assert "hook-s3cret" not in repr(hook) and "/hooks/in" not in repr(hook)


def test_signature_verification_rejects_tampering_and_old_timestamps() -> None:
    body = b'{"a":1}'
    good = sign("k", 1_700_000_000, body)
    assert verify("k", "1700000000", body, good, now=1_700_000_100)
    assert not verify("k", "1700000000", b'{"a":2}', good, now=1_700_000_100)
    assert not verify("other", "1700000000", body, good, now=1_700_000_100)
    assert not verify("k", "1700000000", body, good, now=1_700_001_000)  # replayed too late
    assert not verify("k", "not-a-number", body, good)
