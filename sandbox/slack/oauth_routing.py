"""Request routing helpers of ``sandbox/slack/oauth.py``: which workspace a request is for."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope

from .emulator import SlackEmulator

PAGE_CSP = "default-src 'none'; form-action 'self' http: https:; frame-ancestors 'none'"


def sign_in_target(
    teams: Iterable[SlackEmulator], scope: Scope, body: bytes
) -> SlackEmulator | None:
    """Sign in with Slack: the workspace chosen on the page (``team``), or the one whose
    provider issued the code or the access token."""
    path = str(scope.get("path", ""))
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    form = dict(parse_qsl(body.decode("utf-8", "replace")))
    for emulator in teams:
        provider = emulator.oidc
        if path == "/openid/connect/authorize":
            chosen = (query | form).get("team") == emulator.workspace.team_id
        elif path.endswith("openid.connect.token"):
            chosen = form.get("code") in provider._codes
        else:
            chosen = (token_of(scope, body) or "") in provider._tokens
        if chosen:
            return emulator
    return None


def is_sign_in(path: str) -> bool:
    return path.startswith(("/openid/", "/api/openid."))


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def token_of(scope: Scope, body: bytes) -> str | None:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    values = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    if headers.get("content-type", "").startswith("application/json"):
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            parsed = {}
        values |= parsed if isinstance(parsed, dict) else {}
    else:
        values |= dict(parse_qsl(body.decode("utf-8", "replace")))
    token = values.get("token")
    return str(token) if token else None


def basic_auth(header: str) -> dict[str, str]:
    """``Authorization: Basic`` (how slack_sdk may send the client's id and secret)."""
    if not header.lower().startswith("basic "):
        return {}
    try:
        client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return {}
    return {"client_id": client_id, "client_secret": client_secret}


def page_headers() -> dict[str, str]:
    return {"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"}
