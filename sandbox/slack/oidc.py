"""Sign in with Slack (OpenID Connect), as Slack serves it, for the emulated workspace.

- ``GET /openid/connect/authorize`` (``client_id``, ``scope`` with ``openid``,
  ``response_type=code``, ``redirect_uri``, ``state``, ``nonce``): Slack's consent page.
  Slack asks the person signed in to Slack in this browser; here that is the person the
  sandbox page acts as (its ``SESSION_COOKIE``, set by ``/sandbox/state``), and only they
  are offered. Without it (no page in this browser) it lists the workspace's people;
  ``login_hint`` (a user id or name) puts that person first.
- ``POST /openid/connect/authorize``: the person chose; a one-use code (10 minutes) is
  sent back to ``redirect_uri`` with the ``state``.
- ``POST /api/openid.connect.token`` (``client_id``, ``client_secret``, ``code``,
  ``redirect_uri``): ``{ok, access_token, token_type, id_token}``; the id token is a JWT
  whose claims carry ``nonce``, ``aud`` = client id and the Slack user and team ids.
- ``GET|POST /api/openid.connect.userInfo`` with the access token as Bearer:
  ``{ok, sub, https://slack.com/user_id, https://slack.com/team_id, email, name, ...}``.

Errors use Slack's codes: ``invalid_client_id``, ``bad_client_secret``, ``invalid_code``,
``bad_redirect_uri``, ``invalid_auth``. Only registered clients (``register``) exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .records import User
from .state import Workspace

CODE_TTL_SECONDS = 600
ISSUER = "https://slack.com"
PAGE_CSP = "default-src 'none'; form-action 'self' http: https:; frame-ancestors 'none'"
"""form-action covers the redirect to the app's redirect_uri, so it allows http(s)."""
SESSION_COOKIE = "sandbox_acting_user"
"""The browser's Slack session in the emulator: the user id the sandbox page acts as."""
AUTH_PARAMS = ("client_id", "scope", "response_type", "redirect_uri", "state", "nonce")


@dataclass(frozen=True)
class Grant:
    client_id: str
    redirect_uri: str
    user_id: str
    nonce: str
    issued_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class OpenIDProvider:
    """Slack's OpenID Connect endpoints for one emulated workspace; see the module docstring."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.clients: dict[str, str] = {}
        """client_id -> client_secret."""
        self._codes: dict[str, Grant] = {}
        self._tokens: dict[str, str] = {}
        """access token -> user id."""

    def register(self, client_id: str, client_secret: str) -> None:
        self.clients[client_id] = client_secret

    @property
    def routes(self) -> list[Route]:
        return [
            Route("/openid/connect/authorize", self.authorize, methods=["GET", "POST"]),
            Route("/api/openid.connect.token", self.token, methods=["POST"]),
            Route("/api/openid.connect.userInfo", self.user_info, methods=["GET", "POST"]),
        ]

    # ------------------------------------------------------------------ authorize

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            params |= dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        problem = self._authorize_problem(params)
        if problem is not None:
            return HTMLResponse(f"<p>{html.escape(problem)}</p>", 400, headers=_page_headers())
        chosen = self.ws.find_user(params.get("user", "")) if request.method == "POST" else None
        if chosen is None or chosen.is_bot:
            signed_in = self.ws.find_user(request.cookies.get(SESSION_COOKIE, ""))
            return HTMLResponse(self._chooser(params, signed_in), headers=_page_headers())
        code = secrets.token_urlsafe(24)
        self._codes[code] = Grant(
            params["client_id"], params["redirect_uri"], chosen.id, params["nonce"], time.time()
        )
        back = {"code": code, "state": params.get("state", "")}
        separator = "&" if "?" in params["redirect_uri"] else "?"
        return RedirectResponse(params["redirect_uri"] + separator + urlencode(back), 302)

    def _authorize_problem(self, params: dict[str, str]) -> str | None:
        if params.get("client_id") not in self.clients:
            return "invalid_client_id: this app is not registered with the workspace"
        if params.get("response_type") != "code":
            return "invalid response_type: only code is supported"
        if "openid" not in params.get("scope", "").split():
            return "invalid_scope: openid is required"
        if not params.get("redirect_uri", "").startswith(("http://", "https://")):
            return "bad_redirect_uri"
        if not params.get("nonce"):
            return "nonce is required"
        return None

    def _chooser(self, params: dict[str, str], signed_in: User | None) -> str:
        people = [u for u in self.ws.users.values() if not u.is_bot]
        hint = self.ws.find_user(params.get("login_hint", ""))
        if signed_in is not None and signed_in in people:
            people = [signed_in]  # Slack asks the person signed in to this browser
        elif hint is not None and hint in people:
            people.remove(hint)
            people.insert(0, hint)
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(params.get(name, ""))}">'
            for name in AUTH_PARAMS
        )
        forms = "".join(
            f'<form method="post">{hidden}'
            f'<button name="user" value="{html.escape(u.id)}">Continue as '
            f"{html.escape(u.real_name)} (@{html.escape(u.name)})</button></form>"
            for u in people
        )
        team = html.escape(self.ws.team_name)
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Sign in with Slack</title>"
            f"</head><body><h1>Sign in to {team}</h1>{forms}</body></html>"
        )

    # ------------------------------------------------------------------ token

    async def token(self, request: Request) -> Response:
        args = dict(request.query_params)
        args |= dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        args |= _basic_auth(request.headers.get("authorization", ""))
        secret = self.clients.get(args.get("client_id", ""))
        if secret is None:
            return _error("invalid_client_id")
        if not hmac.compare_digest(args.get("client_secret", ""), secret):
            return _error("bad_client_secret")
        grant = self._codes.pop(args.get("code", ""), None)
        if grant is None or time.time() - grant.issued_at > CODE_TTL_SECONDS:
            return _error("invalid_code")
        if grant.client_id != args["client_id"]:
            return _error("invalid_code")
        if args.get("redirect_uri", "") != grant.redirect_uri:
            return _error("bad_redirect_uri")
        access = f"xoxp-{self.ws.team_id}-{secrets.token_hex(16)}"
        self._tokens[access] = grant.user_id
        claims = self._claims(self.ws.users[grant.user_id]) | {
            "iss": ISSUER,
            "aud": grant.client_id,
            "iat": int(time.time()),
            "exp": int(time.time()) + 3600,
            "nonce": grant.nonce,
        }
        return JSONResponse(
            {
                "ok": True,
                "access_token": access,
                "token_type": "Bearer",
                "id_token": _jwt(claims, secret),
            }
        )

    # ------------------------------------------------------------------ userInfo

    async def user_info(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not token:
            form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
            token = form.get("token") or request.query_params.get("token", "")
        user_id = self._tokens.get(token)
        if user_id is None:
            return _error("invalid_auth")
        return JSONResponse({"ok": True, **self._claims(self.ws.users[user_id])})

    def _claims(self, user: User) -> dict[str, Any]:
        email = user.email or f"{user.name}@example.com"
        return {
            "sub": user.id,
            "https://slack.com/user_id": user.id,
            "https://slack.com/team_id": self.ws.team_id,
            "https://slack.com/team_name": self.ws.team_name,
            "email": email,
            "email_verified": True,
            "name": user.real_name,
            "given_name": user.real_name.split(" ")[0],
            "locale": "en-US",
        }


def _error(code: str) -> Response:
    return JSONResponse({"ok": False, "error": code})


def _basic_auth(header: str) -> dict[str, str]:
    """``Authorization: Basic`` (how slack_sdk sends the client's id and secret)."""
    if not header.lower().startswith("basic "):
        return {}
    try:
        client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return {}
    return {"client_id": client_id, "client_secret": client_secret}


def _page_headers() -> dict[str, str]:
    return {"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"}


def _jwt(claims: dict[str, Any], key: str) -> str:
    """An HS256 JWT (Slack signs RS256; clients that take it from the token endpoint over
    TLS may rely on the TLS connection instead of the signature, OIDC Core 3.1.3.7)."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(key.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"
