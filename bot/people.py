"""People in definitions by name: ``@dana``, ``dana@example.com``, ``user:dana``, ``group:finance``.

Approvers, escalation levels and route owners may name people as Slack shows them
instead of by user id. ``serve`` resolves them once at start-up (and on every reload),
through the Web API: ``users.list`` for handles and display names, ``usergroups.list``
for group handles, ``users.lookupByEmail`` for addresses. ``check --workspace`` does
the same lookups and reports each name that does not resolve at its file:line.

How a name resolves:

- ``U…``/``W…`` ids, ``#channel``, ``{{ expressions }}`` stay as written;
- ``group:finance`` is the group ``@finance`` (it must exist);
- ``user:dana`` / ``user:dana@example.com`` is that user (never a group);
- ``@dana`` is the group with that handle if there is one, else the user so named;
- ``dana@example.com`` is the user with that e-mail address.

A definition keeps ids in the engine, and every message names people as ``<@U…>``
mentions (Slack renders them as names), so nobody reads an id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.notifier import make_web_client
from bot.settings import Settings
from workflows.language.spec import FieldPath
from workflows.language.workflow import Workflow
from workflows.loader import DefinitionError, LoadResult
from workflows.yaml_safe import read_yaml

log = logging.getLogger(__name__)

_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class DirectoryError(Exception):
    """The workspace could not be asked (bad token, Slack away): one line for the operator."""


class Directory(Protocol):
    async def group_exists(self, handle: str) -> bool: ...

    async def user_named(self, name: str) -> str | None: ...

    async def user_by_email(self, email: str) -> str | None: ...


@dataclass(frozen=True)
class Unresolved:
    workflow: str
    path: FieldPath
    """From the workflow's mapping to the name, e.g. ``("steps", 2, "approve", "approvers", 0)``."""
    name: str
    reason: str


class SlackDirectory:
    """The workspace's users and groups, listed once; e-mails looked up one by one."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._users: dict[str, str] | None = None
        self._groups: frozenset[str] | None = None
        self._emails: dict[str, str | None] = {}

    async def group_exists(self, handle: str) -> bool:
        if self._groups is None:
            response = await self._call("usergroups_list")
            self._groups = frozenset(str(g.get("handle", "")) for g in response["usergroups"])
        return handle in self._groups

    async def user_named(self, name: str) -> str | None:
        if self._users is None:
            self._users = await self._list_users()
        return self._users.get(name.lower())

    async def user_by_email(self, email: str) -> str | None:
        key = email.lower()
        if key not in self._emails:
            try:
                response = await self._client.users_lookupByEmail(email=email)
                self._emails[key] = str(response["user"]["id"])
            except SlackApiError as exc:
                if exc.response.get("error") != "users_not_found":
                    raise DirectoryError(_why("users.lookupByEmail", exc)) from None
                self._emails[key] = None
        return self._emails[key]

    async def _list_users(self) -> dict[str, str]:
        found: dict[str, str] = {}
        cursor: str | None = None
        while True:
            response = await self._call("users_list", limit=1000, cursor=cursor)
            for member in response.get("members", []):
                if member.get("deleted") or member.get("is_bot"):
                    continue
                profile = member.get("profile") or {}
                for name in (member.get("name"), profile.get("display_name")):
                    if name:
                        found.setdefault(str(name).lower(), str(member["id"]))
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return found

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return await getattr(self._client, method)(**kwargs)
        except SlackApiError as exc:
            raise DirectoryError(_why(method.replace("_", ".", 1), exc)) from None
        except (ClientError, OSError, TimeoutError) as exc:
            raise DirectoryError(f"Slack {method}: {type(exc).__name__}") from None


def _why(method: str, exc: SlackApiError) -> str:
    return f"Slack {method}: {exc.response.get('error', 'failed')}"


async def resolve_name(directory: Directory, written: str) -> tuple[str, str | None]:
    """``written`` as the engine takes it (an id, ``@group``, ``#channel``), and why not if
    it names nobody (then it is returned as written)."""
    text = written.strip()
    if "{{" in text or "{%" in text or text.startswith("#") or _ID.match(text):
        return text, None
    if text.startswith("group:"):
        handle = text.removeprefix("group:").lstrip("@")
        if await directory.group_exists(handle):
            return f"@{handle}", None
        return written, f"no user group @{handle} in the workspace"
    explicit = text.startswith("user:")
    name = text.removeprefix("user:").strip()
    if _EMAIL.match(name):
        found = await directory.user_by_email(name)
        return (found, None) if found else (written, f"no user with e-mail {name}")
    if not explicit and not name.startswith("@"):
        return text, None  # an id of another shape (a group id S…): Slack decides at run time
    handle = name.lstrip("@")
    if not explicit and await directory.group_exists(handle):
        return f"@{handle}", None
    found = await directory.user_named(handle)
    if found:
        return found, None
    nobody = "no user" if explicit else "no user group or user"
    return written, f"{nobody} @{handle} in the workspace (user:NAME, group:HANDLE or an id)"


async def resolve_workflow(
    workflow: Workflow, directory: Directory
) -> tuple[Workflow, list[Unresolved]]:
    """``workflow`` with every name its steps' ``people()`` list resolved to an id."""
    changes: list[tuple[FieldPath, str]] = []
    unresolved: list[Unresolved] = []
    for index, step in enumerate(workflow.steps):
        for key, written in step.people():
            path: FieldPath = ("steps", index, *key)
            resolved, problem = await resolve_name(directory, written)
            if problem:
                unresolved.append(Unresolved(workflow.name, path, written, problem))
            elif resolved != written:
                changes.append((path, resolved))
    if not changes:
        return workflow, unresolved
    data = workflow.model_dump(by_alias=True, exclude_unset=True)
    for path, value in changes:
        _set(data, path, value)
    return Workflow.model_validate(data), unresolved


async def resolve_workflows(
    workflows: MutableMapping[str, Workflow], directory: Directory
) -> list[Unresolved]:
    """Resolve in place (the engine, scheduler and listeners share the mapping); an
    unresolved name stays as written and is logged, the workflow still loads."""
    unresolved: list[Unresolved] = []
    for name, workflow in list(workflows.items()):
        workflows[name], missing = await resolve_workflow(workflow, directory)
        unresolved += missing
    for item in unresolved:
        log.warning("workflow %s: %s: %s", item.workflow, item.name, item.reason)
    return unresolved


def _set(data: Any, path: FieldPath, value: str) -> None:
    *parents, last = path
    for part in parents:
        data = data[part]
    data[last] = value


async def resolve_at_start(
    workflows: MutableMapping[str, Workflow], client: AsyncWebClient
) -> None:
    """``serve``'s resolution (start-up and reloads): a workspace that cannot be asked is
    logged, and the definitions run as written (``@name`` then means a group)."""
    try:
        await resolve_workflows(workflows, SlackDirectory(client))
    except DirectoryError as exc:
        log.warning("names in definitions not resolved: %s", exc)


async def resolve_as_served(workflows: MutableMapping[str, Workflow], settings: Settings) -> None:
    """What ``serve`` would run: names resolved when a Slack token is configured, so a CLI
    command comparing digests with the stored versions sees the same definitions."""
    token = settings.slack_bot_token.get_secret_value()
    if token:
        client = make_web_client(token, settings.slack_api_url, max_retries=1)
        await resolve_at_start(workflows, client)


async def workspace_errors(result: LoadResult, directory: Directory) -> list[DefinitionError]:
    """``check --workspace``: each name that resolves to nobody, at its file:line."""
    files = {name: file for file, name in result.files.items()}
    errors: list[DefinitionError] = []
    for workflow in result.workflows.values():
        _, unresolved = await resolve_workflow(workflow, directory)
        if not unresolved:
            continue
        file = files[workflow.name]
        lines = read_yaml(Path(file)).lines
        for item in unresolved:
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item.path)
            line = lines.get(item.path, 1)
            errors.append(DefinitionError(file, line, where.lstrip("."), item.reason))
    return errors
