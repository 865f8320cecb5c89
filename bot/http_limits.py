"""Bounds on what an HTTP client can make the edge hold or parse: a body read in chunks up
to a cap, and JSON refused when nested deeper than a limit.

Python's ``json`` recurses once per nesting level, so ``[[[…]]]`` 50,000 deep raises
``RecursionError`` (a 500, not a parse error). The depth is counted first, by a linear
scan that skips string contents, and only a body within the limit is handed to ``json``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import ClientDisconnect, Request

MAX_JSON_DEPTH = 64
"""Deepest nesting accepted. Slack's own payloads (a view's state, rich text) stay under
about 12 levels; webhook senders' documents rarely pass 20."""

# A JSON string (escapes included) or one bracket; everything else is skipped by finditer.
# The closing quote is optional so an unterminated string ends the scan at once instead of
# being retried from every later quote (quadratic on '"\\"\\"\\"…').
_STRING_OR_BRACKET = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"body is larger than {limit} bytes")


class IncompleteBody(Exception):
    """The client went away before sending the whole body."""


class BadJSON(ValueError):
    """Not JSON, or JSON nested too deep; the message is one short line for the client."""


async def read_capped(request: Request, limit: int) -> bytes:
    """The body, read in chunks and refused as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise IncompleteBody("the client disconnected before sending the whole body") from None
    return b"".join(chunks)


def too_deep(document: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    data = document.encode("utf-8", "surrogatepass") if isinstance(document, str) else document
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # cannot open more levels than it has brackets; most bodies end here
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def loads_bounded(document: bytes | str, limit: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses NaN/Infinity and nesting deeper than ``limit``."""
    if too_deep(document, limit):
        raise BadJSON(f"nested deeper than {limit} levels")
    try:
        return json.loads(document, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadJSON(f"not valid JSON: {' '.join(str(exc).split())[:120]}") from None


def _no_constants(name: str) -> Any:
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them.
    raise ValueError(f"{name} is not a JSON value")
