"""The Jira connector: create an issue, comment on it, move it through a transition.

Speaks the REST API v2 (plain-text fields; Jira Data Center and Cloud) or v3 (Cloud, where
rich-text fields are Atlassian Document Format: plain text is wrapped into paragraphs here).
Authentication: Cloud uses the account e-mail (``username``) and an API token (basic auth);
Data Center uses a personal access token (bearer) when ``username`` is not set.

Creating an issue or a comment is a POST without idempotency support in Jira, so it is repeated
in process only when Jira certainly did not process it (connection refused, 429, 503).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from connectors.base import Hooks, IssueRef, make_transport, resolve_base_url
from connectors.config import JiraConfig, resolve_secret
from connectors.errors import ConnectorBadResponse, ConnectorRejected
from connectors.http import decode_body
from connectors.transport import HttpTransport

__all__ = ["JiraConnector", "to_adf"]

# Keys end up in URL paths; anything else (a "../" from user text) must not reach Jira.
_ISSUE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*-\d+|\d+")
_LABEL = re.compile(r"[A-Za-z0-9_.-]{1,255}")
COMMENT_PROPERTY = "switchboard"
"""The comment property holding the idempotency marker of a comment we made."""


def to_adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document: blank lines separate paragraphs."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": p}]} for p in paragraphs
        ],
    }


class JiraConnector:
    kind = "jira"

    def __init__(self, name: str, transport: HttpTransport, *, api_version: int = 2) -> None:
        self.name = name
        self.transport = transport
        self.api_version = api_version
        self._api = f"/rest/api/{api_version}"

    @classmethod
    def from_config(
        cls, name: str, config: JiraConfig, env: Mapping[str, str], hooks: Hooks | None = None
    ) -> JiraConnector:
        token = resolve_secret(env, config.token_env, connection=name, field="token_env")
        raw = token.get_secret_value()
        if config.username:
            basic = base64.b64encode(f"{config.username}:{raw}".encode()).decode("ascii")
            authorization = f"Basic {basic}"
        else:
            authorization = f"Bearer {raw}"
        transport = make_transport(
            name,
            config,
            env,
            hooks or Hooks(),
            base_url=resolve_base_url(name, config, env),
            auth_headers={"Authorization": authorization, "Accept": "application/json"},
            secrets=(raw,),
        )
        return cls(name, transport, api_version=config.api_version)

    def _rich(self, text: str) -> Any:
        return to_adf(text) if self.api_version == 3 else text

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        response = await self.transport.send(method, f"{self._api}{path}", json=json)
        return decode_body(response, self.name)

    def _field(self, body: Any, key: str, what: str) -> str:
        if not isinstance(body, dict) or key not in body:
            raise ConnectorBadResponse(f"{what}: response has no {key!r}", connection=self.name)
        return str(body[key])

    def _key(self, issue_key: str) -> str:
        if not _ISSUE_KEY.fullmatch(issue_key):
            raise ConnectorRejected(f"not a Jira issue key: {issue_key!r}", connection=self.name)
        return issue_key

    def _browse(self, key: str) -> str:
        # Relative, so a base_url with a path (https://host/jira) keeps it.
        return str(self.transport.base_url.join(f"browse/{key}"))

    async def create_issue(
        self,
        project: str,
        summary: str,
        *,
        issue_type: str = "Task",
        description: str | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> IssueRef:
        """Create an issue; ``fields`` adds or overrides raw Jira fields (labels, priority…)."""
        payload: dict[str, Any] = {
            "project": {"key": project},
            "summary": summary,
            "issuetype": {"name": issue_type},
        }
        if description:
            payload["description"] = self._rich(description)
        payload.update(fields or {})
        body = await self._call("POST", "/issue", {"fields": payload})
        key = self._field(body, "key", "create issue")
        return IssueRef(key=key, id=self._field(body, "id", "create issue"), url=self._browse(key))

    async def find_by_label(self, label: str) -> IssueRef | None:
        """The oldest issue carrying ``label`` (an idempotency label), or None.

        Labels hold no spaces or quotes, so ``label`` is refused unless it is a plain token:
        it is the only value that goes into the JQL.
        """
        if not _LABEL.fullmatch(label):
            raise ConnectorRejected(f"not a plain label: {label!r}", connection=self.name)
        response = await self.transport.send(
            "GET",
            f"{self._api}/search",
            params={"jql": f'labels = "{label}" ORDER BY created ASC', "maxResults": "1"},
            idempotent=True,
        )
        body = decode_body(response, self.name)
        issues = body.get("issues") if isinstance(body, dict) else None
        if not isinstance(issues, list):
            raise ConnectorBadResponse("search: response has no 'issues'", connection=self.name)
        if not issues:
            return None
        key = self._field(issues[0], "key", "search")
        return IssueRef(key=key, id=self._field(issues[0], "id", "search"), url=self._browse(key))

    async def find_comment(self, issue_key: str, marker: str) -> IssueRef | None:
        """The comment of ``issue_key`` whose ``switchboard`` property is ``marker``, or None."""
        issue_key = self._key(issue_key)
        response = await self.transport.send(
            "GET",
            f"{self._api}/issue/{issue_key}/comment",
            params={"expand": "properties", "maxResults": "1000"},
            idempotent=True,
        )
        body = decode_body(response, self.name)
        comments = body.get("comments") if isinstance(body, dict) else None
        for comment in comments if isinstance(comments, list) else []:
            properties = comment.get("properties") if isinstance(comment, dict) else None
            for prop in properties if isinstance(properties, list) else []:
                if isinstance(prop, dict) and prop.get("key") == COMMENT_PROPERTY:
                    value = prop.get("value")
                    if isinstance(value, dict) and value.get("key") == marker:
                        comment_id = self._field(comment, "id", "comments")
                        url = f"{self._browse(issue_key)}?focusedCommentId={comment_id}"
                        return IssueRef(key=comment_id, id=comment_id, url=url)
        return None

    async def comment(self, issue_key: str, text: str, *, marker: str | None = None) -> IssueRef:
        """Comment on ``issue_key``; ``marker`` is stored as the comment's ``switchboard``
        property, which :meth:`find_comment` looks for (invisible to people)."""
        issue_key = self._key(issue_key)
        payload: dict[str, Any] = {"body": self._rich(text)}
        if marker is not None:
            payload["properties"] = [{"key": COMMENT_PROPERTY, "value": {"key": marker}}]
        body = await self._call("POST", f"/issue/{issue_key}/comment", payload)
        comment_id = self._field(body, "id", "comment")
        url = f"{self._browse(issue_key)}?focusedCommentId={comment_id}"
        return IssueRef(key=comment_id, id=comment_id, url=url)

    async def status(self, issue_key: str) -> str:
        """The issue's current status name, case-folded."""
        issue_key = self._key(issue_key)
        response = await self.transport.send(
            "GET", f"{self._api}/issue/{issue_key}", params={"fields": "status"}, idempotent=True
        )
        body = decode_body(response, self.name)
        fields = body.get("fields") if isinstance(body, dict) else None
        status = fields.get("status") if isinstance(fields, dict) else None
        if not isinstance(status, dict) or "name" not in status:
            raise ConnectorBadResponse("issue: response has no status", connection=self.name)
        return str(status["name"]).casefold()

    async def transition(self, issue_key: str, transition: str) -> str:
        """Apply a transition given by id or by name (its own or its target status's).

        Returns the id used; "" when the issue already is in the status ``transition``
        names (so a repeated transition by name is not an error). An unknown name is
        ``ConnectorRejected`` listing the choices.
        """
        issue_key = self._key(issue_key)
        transition_id = transition if transition.isdigit() else None
        if transition_id is None:
            body = await self._call("GET", f"/issue/{issue_key}/transitions")
            choices = body.get("transitions", []) if isinstance(body, dict) else []
            wanted = transition.casefold()
            for choice in choices:
                names = {str(choice.get("name", "")), str(choice.get("to", {}).get("name", ""))}
                if wanted in {n.casefold() for n in names}:
                    transition_id = str(choice["id"])
                    break
            else:
                if await self.status(issue_key) == wanted:
                    return ""  # already there (an earlier try's answer was lost): done
                available = ", ".join(sorted(str(c.get("name")) for c in choices)) or "none"
                raise ConnectorRejected(
                    f"{issue_key} has no transition {transition!r} (available: {available})",
                    connection=self.name,
                )
        await self._call(
            "POST", f"/issue/{issue_key}/transitions", {"transition": {"id": transition_id}}
        )
        return transition_id

    async def aclose(self) -> None:
        await self.transport.aclose()
