"""The GitHub connector: open an issue, comment on an issue or pull request.

Uses the REST API (``Accept: application/vnd.github+json``, a pinned API version) with a token
(fine-grained or classic) sent as a bearer token. ``base_url`` defaults to the public API; for
GitHub Enterprise Server set it to ``https://HOST/api/v3``. ``repo`` in the connection is the
default ``owner/name``; every call may name another.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.base import Hooks, IssueRef, make_transport, resolve_base_url
from connectors.config import GithubConfig, resolve_secret
from connectors.errors import ConnectorBadResponse, ConnectorConfigError, ConnectorRejected
from connectors.http import decode_body
from connectors.transport import HttpTransport

__all__ = ["GithubConnector", "comment_marker"]

PUBLIC_API = "https://api.github.com"
API_VERSION = "2022-11-28"
_REPO = re.compile(r"[\w.-]+/[\w.-]+")


def comment_marker(marker: str) -> str:
    """The invisible tag a comment made under ``marker`` carries (rendered Markdown hides it)."""
    return f"<!-- switchboard:{marker.replace('-->', '')} -->"


class GithubConnector:
    kind = "github"

    def __init__(self, name: str, transport: HttpTransport, *, repo: str | None = None) -> None:
        self.name = name
        self.transport = transport
        self.repo = repo

    @classmethod
    def from_config(
        cls, name: str, config: GithubConfig, env: Mapping[str, str], hooks: Hooks | None = None
    ) -> GithubConnector:
        token = resolve_secret(env, config.token_env, connection=name, field="token_env")
        raw = token.get_secret_value()
        has_url = config.base_url or config.base_url_env
        transport = make_transport(
            name,
            config,
            env,
            hooks or Hooks(),
            base_url=resolve_base_url(name, config, env) if has_url else PUBLIC_API,
            auth_headers={
                "Authorization": f"Bearer {raw}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
            secrets=(raw,),
        )
        return cls(name, transport, repo=config.repo)

    def _repo(self, repo: str | None) -> str:
        chosen = repo or self.repo
        if chosen is None:
            raise ConnectorConfigError("no repo given and no default repo", connection=self.name)
        # Both parts become path segments: "." or ".." would drop or climb one.
        dots = ".." in chosen or any(part == "." for part in chosen.split("/"))
        if not _REPO.fullmatch(chosen) or dots:
            raise ConnectorRejected(
                f"not an owner/name repository: {chosen!r}", connection=self.name
            )
        return chosen

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = await self.transport.send("POST", path, json=payload)
        body = decode_body(response, self.name)
        if not isinstance(body, dict) or "id" not in body or "html_url" not in body:
            raise ConnectorBadResponse(f"POST {path}: unexpected response", connection=self.name)
        return body

    async def create_issue(
        self,
        title: str,
        body: str = "",
        *,
        repo: str | None = None,
        labels: Sequence[str] = (),
        assignees: Sequence[str] = (),
    ) -> IssueRef:
        full = self._repo(repo)
        payload: dict[str, Any] = {"title": title, "body": body}
        if labels:
            payload["labels"] = list(labels)
        if assignees:
            payload["assignees"] = list(assignees)
        created = await self._post(f"/repos/{full}/issues", payload)
        return IssueRef(
            key=f"{full}#{created.get('number')}", id=str(created["id"]), url=created["html_url"]
        )

    async def _get_list(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        response = await self.transport.send("GET", path, params=params, idempotent=True)
        body = decode_body(response, self.name)
        if not isinstance(body, list):
            raise ConnectorBadResponse(f"GET {path}: expected a list", connection=self.name)
        return [item for item in body if isinstance(item, dict)]

    async def find_by_label(self, label: str, *, repo: str | None = None) -> IssueRef | None:
        """The oldest issue (open or closed) carrying ``label``, or None.

        Listing by label reads the issues themselves, not the search index, so an issue
        created a moment ago is found (the search API may lag by minutes)."""
        full = self._repo(repo)
        found = await self._get_list(
            f"/repos/{full}/issues",
            {"labels": label, "state": "all", "sort": "created", "direction": "asc"},
        )
        issues = [i for i in found if "pull_request" not in i and "html_url" in i]
        if not issues:
            return None
        first = issues[0]
        return IssueRef(
            key=f"{full}#{first.get('number')}", id=str(first["id"]), url=first["html_url"]
        )

    async def find_comment(
        self, number: int, marker: str, *, repo: str | None = None
    ) -> IssueRef | None:
        """The comment on ``number`` that carries ``marker`` (see :func:`comment_marker`)."""
        full = self._repo(repo)
        hidden = comment_marker(marker)
        found = await self._get_list(
            f"/repos/{full}/issues/{int(number)}/comments", {"per_page": "100"}
        )
        for comment in found:
            if hidden in str(comment.get("body", "")) and "html_url" in comment:
                return IssueRef(
                    key=str(comment["id"]), id=str(comment["id"]), url=comment["html_url"]
                )
        return None

    async def comment(
        self, number: int, body: str, *, repo: str | None = None, marker: str | None = None
    ) -> IssueRef:
        """Comment on issue or pull request ``number``; ``marker`` is added as a hidden
        HTML comment that :meth:`find_comment` looks for."""
        full = self._repo(repo)
        if marker is not None:
            body = f"{body}\n\n{comment_marker(marker)}"
        created = await self._post(f"/repos/{full}/issues/{int(number)}/comments", {"body": body})
        return IssueRef(key=str(created["id"]), id=str(created["id"]), url=created["html_url"])

    async def aclose(self) -> None:
        await self.transport.aclose()
