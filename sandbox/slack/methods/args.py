"""Web API argument parsing and errors shared by every method surface."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from ..records import JSON


class ApiError(Exception):
    """A Web API failure: Slack's error code plus any extra top-level fields."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def error_messages(errors: list[str]) -> JSON:
    """Slack's ``response_metadata.messages`` for an ``invalid_arguments`` failure."""
    return {"messages": [f"[ERROR] {e}" for e in errors]}


class Args:
    """Method arguments merged from query string, form or JSON body."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)

    def opt(
        self, name: str, required: bool = False, error: str = "invalid_arguments"
    ) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise ApiError(
                    error,
                    **(
                        {"response_metadata": error_messages([f"missing required field: {name}"])}
                        if error == "invalid_arguments"
                        else {}
                    ),
                )
            return None
        return value if isinstance(value, str) else str(value)

    def req(self, name: str, error: str = "invalid_arguments") -> str:
        value = self.opt(name, required=True, error=error)
        assert value is not None
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true", "yes")

    def num(self, name: str, default: int) -> int:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ApiError("invalid_arguments") from None

    def json(self, name: str, error: str) -> Any:
        value = self.values.get(name)
        if isinstance(value, str):
            if not value:
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise ApiError(error) from None
        return value


def cursor_page(items: list[Any], args: Args, default_limit: int = 100) -> tuple[list[Any], str]:
    """Slack's cursor pagination: an opaque cursor that encodes the next offset."""
    limit = max(1, min(args.num("limit", default_limit) or default_limit, 1000))
    cursor = args.opt("cursor")
    start = 0
    if cursor:
        try:
            start = int(base64.b64decode(cursor).decode().removeprefix("next:"))
        except ValueError:
            raise ApiError("invalid_cursor") from None
    page = items[start : start + limit]
    nxt = start + limit
    next_cursor = base64.b64encode(f"next:{nxt}".encode()).decode() if nxt < len(items) else ""
    return page, next_cursor
