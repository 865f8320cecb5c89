"""The generic HTTP/REST connector behind the workflow ``http`` step.

::

    erp = HttpConnector.from_config("erp", HttpConfig(base_url=..., token_env="ERP_TOKEN"), env)
    result = await erp.request("POST", "/ledger", json={...}, idempotency_key=f"{run}:{step}")
    result.data                          # parsed JSON (or text), or the ``select``-ed part of it
    page = await erp.paginate("/invoices", Pagination(mode="link", items="data"))
    page.items, page.truncated

``idempotency_key`` is sent in the connection's ``idempotency_header`` and makes a POST/PATCH
safe to retry in process, as GET/PUT/DELETE are. Selection paths use the subset documented in
:mod:`connectors.jsonpath`. Pagination follows ``Link: <…>; rel="next"`` or a cursor field in
the body, at most ``max_pages``. Every URL, a next link's too, must stay under ``base_url``
(checked in :mod:`connectors.transport`), so credentials never go to another host or path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from connectors.base import Hooks, make_transport, resolve_base_url
from connectors.config import HttpConfig, resolve_secret
from connectors.errors import ConnectorBadResponse
from connectors.jsonpath import PathNotFound, select
from connectors.transport import HttpTransport

__all__ = ["HttpConnector", "HttpResult", "PageResult", "Pagination"]


@dataclass(frozen=True)
class HttpResult:
    status_code: int
    headers: dict[str, str]
    data: Any
    """Parsed JSON (the selected part when ``select`` was given), text for a non-JSON body,
    ``None`` for an empty one."""


class Pagination(BaseModel):
    """How to walk a paginated collection; a workflow step's YAML validates into this."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["link", "cursor"]
    items: str = Field("$", description="Path to the list of items within one page.")
    cursor_path: str = Field("next_cursor", description="cursor mode: path to the next cursor.")
    cursor_param: str = Field("cursor", description="cursor mode: query parameter to send it.")
    max_pages: int = Field(10, ge=1, le=1000)


@dataclass(frozen=True)
class PageResult:
    items: list[Any]
    pages: int
    truncated: bool
    """True when another page existed after ``max_pages``."""


def decode_body(response: httpx.Response, connection: str) -> Any:
    """Parse a response body: JSON when it says so, text otherwise, ``None`` when empty."""
    if not response.content:
        return None
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return json.loads(response.content)
        except ValueError:
            raise ConnectorBadResponse(
                f"{response.request.method} {response.request.url.path}: body is not valid JSON",
                connection=connection,
            ) from None
    return response.text


def select_or_raise(document: Any, path: str, response: httpx.Response, connection: str) -> Any:
    try:
        return select(document, path)
    except PathNotFound as exc:
        raise ConnectorBadResponse(
            f"{response.request.method} {response.request.url.path}: {exc}", connection=connection
        ) from None


class HttpConnector:
    kind = "http"

    def __init__(
        self, name: str, transport: HttpTransport, *, idempotency_header: str = "Idempotency-Key"
    ) -> None:
        self.name = name
        self.transport = transport
        self.idempotency_header = idempotency_header

    @classmethod
    def from_config(
        cls, name: str, config: HttpConfig, env: Mapping[str, str], hooks: Hooks | None = None
    ) -> HttpConnector:
        auth: dict[str, str] = {}
        if config.token_env:
            token = resolve_secret(env, config.token_env, connection=name, field="token_env")
            auth["Authorization"] = f"Bearer {token.get_secret_value()}"
        transport = make_transport(
            name,
            config,
            env,
            hooks or Hooks(),
            base_url=resolve_base_url(name, config, env),
            auth_headers=auth,
        )
        return cls(name, transport, idempotency_header=config.idempotency_header)

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        select: str | None = None,
    ) -> HttpResult:
        """Send one request relative to the base URL; raise a ``ConnectorError`` unless 2xx."""
        all_headers = dict(headers or {})
        if idempotency_key is not None:
            all_headers[self.idempotency_header] = idempotency_key
        response = await self.transport.send(
            method,
            path,
            params=query,
            json=json,
            headers=all_headers,
            idempotent=True if idempotency_key is not None else None,
        )
        data = decode_body(response, self.name)
        if select is not None:
            data = select_or_raise(data, select, response, self.name)
        return HttpResult(response.status_code, dict(response.headers), data)

    async def paginate(
        self,
        path: str,
        pagination: Pagination,
        *,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> PageResult:
        """GET every page of a collection (at most ``max_pages``) and concatenate the items."""
        items: list[Any] = []
        url: str | httpx.URL = path
        params: dict[str, Any] | None = dict(query or {})
        for page in range(1, pagination.max_pages + 1):
            response = await self.transport.send("GET", url, params=params, headers=headers)
            body = decode_body(response, self.name)
            page_items = select_or_raise(body, pagination.items, response, self.name)
            if not isinstance(page_items, list):
                raise ConnectorBadResponse(
                    f"GET {response.request.url.path}: {pagination.items!r} is not a list",
                    connection=self.name,
                )
            items.extend(page_items)
            if pagination.mode == "link":
                next_url = self._next_link(response)
                if next_url is None:
                    return PageResult(items, page, truncated=False)
                url, params = next_url, None  # the link carries its own query string
            else:
                cursor = self._next_cursor(body, pagination.cursor_path)
                if cursor is None:
                    return PageResult(items, page, truncated=False)
                params = {**(query or {}), pagination.cursor_param: cursor}
        return PageResult(items, pagination.max_pages, truncated=True)

    @staticmethod
    def _next_link(response: httpx.Response) -> httpx.URL | None:
        # Where it points is checked by the transport, like every URL: another host or a
        # path outside base_url is refused before our credentials are sent there.
        target = response.links.get("next", {}).get("url")
        if not target:
            return None
        return response.request.url.join(target)

    @staticmethod
    def _next_cursor(body: Any, path: str) -> str | None:
        try:
            cursor = select(body, path)
        except PathNotFound:
            return None  # the last page usually just leaves the field out
        if cursor is None or cursor == "":
            return None
        return str(cursor)

    async def aclose(self) -> None:
        await self.transport.aclose()
