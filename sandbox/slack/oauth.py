"""One Slack app installed in several emulated workspaces: OAuth v2 as Slack serves it.

``SlackWorkspaces`` hosts one :class:`~sandbox.slack.SlackEmulator` per team (each its own
users, channels and bot user) behind one base URL, and the app's side of Slack's
"Installing with OAuth" flow (https://docs.slack.dev/authentication/installing-with-oauth):

- ``GET /oauth/v2/authorize`` (``client_id``, ``scope``, ``user_scope``, ``redirect_uri``,
  ``state``, optional ``team``): the consent page. Slack shows the signed-in person the
  scopes and a workspace picker; the emulator has no browser session, so the page offers
  one "Allow" button per (workspace, person). ``POST`` with ``team`` and ``user`` is the
  click: a one-use code (10 minutes) goes back to ``redirect_uri`` with ``state``;
  ``deny`` sends ``error=access_denied`` with ``state`` instead.
  ``redirect_uri`` must be one of the app's redirect URLs (Slack: ``bad_redirect_uri``).
- ``POST /api/oauth.v2.access`` (https://docs.slack.dev/reference/methods/oauth.v2.access):
  ``client_id`` + ``client_secret`` (form or HTTP Basic) and ``code`` (+ the same
  ``redirect_uri``) answers the bot token, ``token_type: bot``, ``scope``, ``bot_user_id``,
  ``app_id``, ``team``, ``enterprise: null``, ``authed_user``. With
  ``token_rotation_enabled`` (https://docs.slack.dev/authentication/using-token-rotation:
  "With token rotation, it expires every 12 hours") the token is an ``xoxe.xoxb-`` one
  with ``expires_in`` and a ``refresh_token``, and ``grant_type=refresh_token`` exchanges
  the refresh token for a new access token. Errors: ``invalid_client_id``,
  ``bad_client_secret``, ``invalid_code``, ``bad_redirect_uri``, ``invalid_refresh_token``.
- Every other ``/api/{method}`` goes to the workspace whose token it carries, so
  ``auth.test`` answers per token; an expired token gets ``token_expired``, a revoked or
  unknown one ``invalid_auth``. ``/response/{id}`` and ``/upload/v1/{id}`` go to the
  workspace that issued them.
- ``uninstall(team)`` revokes the team's tokens and delivers ``tokens_revoked``
  (https://docs.slack.dev/reference/events/tokens_revoked: user ids, never tokens) and
  ``app_uninstalled`` (https://api.slack.com/events/app_uninstalled), in that order;
  Slack does not guarantee one.

The refresh token of an installation stays the same across refreshes and an exchanged
access token stays valid until it expires, so two processes refreshing at once both get
a working token.
"""

from __future__ import annotations

import hmac
import html
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .emulator import SlackEmulator
from .oauth_routing import basic_auth, is_sign_in, page_headers, read_body, sign_in_target, token_of
from .seeds import WorkspaceSeed

CODE_TTL_SECONDS = 600
ROTATED_EXPIRES_IN = 43200
"""Seconds an access token lives with token rotation (Slack: 12 hours)."""
AUTH_PARAMS = ("client_id", "scope", "user_scope", "redirect_uri", "state")


@dataclass(frozen=True)
class AppRegistration:
    """The app's settings at Slack (api.slack.com/apps): credentials, redirect URLs, rotation."""

    client_id: str
    client_secret: str
    redirect_urls: tuple[str, ...]
    token_rotation_enabled: bool = False
    expires_in: int = ROTATED_EXPIRES_IN


@dataclass
class IssuedToken:
    team_id: str
    expires_at: float | None = None


@dataclass(frozen=True)
class _Grant:
    team_id: str
    user_id: str
    scope: str
    redirect_uri: str
    issued_at: float


@dataclass
class _Installation:
    team_id: str
    installer: str
    scope: str
    refresh_token: str | None = None
    tokens: list[str] = field(default_factory=list)


class SlackWorkspaces:
    """Several emulated workspaces and one app's OAuth install; see the module docstring."""

    def __init__(
        self,
        signing_secret: str,
        seeds: Iterable[WorkspaceSeed],
        app: AppRegistration,
        **emulator_options: Any,
    ) -> None:
        self.app = app
        self.teams: dict[str, SlackEmulator] = {}
        for seed in seeds:
            emulator = SlackEmulator(signing_secret, "", seed, **emulator_options)
            emulator._api.authenticate = self._refusal_for(seed.team_id)
            self.teams[seed.team_id] = emulator
        self.tokens: dict[str, IssuedToken] = {}
        self.installations: dict[str, _Installation] = {}
        self.exchanges: list[str] = []
        """``grant_type`` of every successful ``oauth.v2.access``, in order."""
        self._codes: dict[str, _Grant] = {}
        self._app: Starlette | None = None
        self._base_url: str | None = None

    # ------------------------------------------------------------------ wiring

    @property
    def base_url(self) -> str | None:
        return self._base_url

    @base_url.setter
    def base_url(self, url: str | None) -> None:
        self._base_url = url.rstrip("/") if url else None
        for emulator in self.teams.values():
            emulator.base_url = self._base_url

    @property
    def api_url(self) -> str:
        if not self._base_url:
            raise RuntimeError("set base_url to where asgi_app is served")
        return f"{self._base_url}/api/"

    @property
    def authorize_url(self) -> str:
        return f"{self.api_url[: -len('/api/')]}/oauth/v2/authorize"

    @property
    def request_url(self) -> str | None:
        return next(iter(self.teams.values())).request_url

    @request_url.setter
    def request_url(self, url: str | None) -> None:
        for emulator in self.teams.values():
            emulator.request_url = url

    def team(self, team_id: str) -> SlackEmulator:
        return self.teams[team_id]

    async def aclose(self) -> None:
        for emulator in self.teams.values():
            await emulator.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app: OAuth here, everything else to the workspace it belongs to."""
        if self._app is None:
            self._app = Starlette(
                routes=[
                    Route("/oauth/v2/authorize", self.authorize, methods=["GET", "POST"]),
                    Route("/api/oauth.v2.access", self.access, methods=["POST", "GET"]),
                ]
            )
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path in ("/oauth/v2/authorize", "/api/oauth.v2.access"):
            await self._app(scope, receive, send)
            return
        body = await read_body(receive)
        if is_sign_in(path):
            target = sign_in_target(self.teams.values(), scope, body)
            if target is None and path == "/openid/connect/authorize":
                await HTMLResponse(self._workspace_picker(scope), headers=page_headers())(
                    scope, receive, send
                )
                return
        else:
            target = self._target(scope, body)
        if target is None:
            error = "not_authed" if path.startswith("/api/") else "invalid_url"
            await JSONResponse(
                {"ok": False, "error": error}, 404 if error != "not_authed" else 200
            )(scope, receive, send)
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await target.asgi_app(scope, replay, send)

    def register_sign_in(self, client_id: str, client_secret: str) -> None:
        """Sign in with Slack (the console) for the same app, in every workspace."""
        for emulator in self.teams.values():
            emulator.oidc.register(client_id, client_secret)

    def _workspace_picker(self, scope: Scope) -> str:
        query = scope.get("query_string", b"").decode("latin-1")
        links = "".join(
            f'<a href="/openid/connect/authorize?{html.escape(query)}&amp;team='
            f'{html.escape(e.workspace.team_id)}">{html.escape(e.workspace.team_name)}</a>'
            for e in self.teams.values()
        )
        return f"<!doctype html><html><body><h1>Choose a workspace</h1>{links}</body></html>"

    def _target(self, scope: Scope, body: bytes) -> SlackEmulator | None:
        path = str(scope.get("path", ""))
        rest = path.rsplit("/", 1)[-1]
        if path.startswith("/response/"):
            return next((e for e in self.teams.values() if rest in e.workspace.response_urls), None)
        if path.startswith("/upload/"):
            return next((e for e in self.teams.values() if rest in e.workspace.files), None)
        token = token_of(scope, body)
        issued = self.tokens.get(token or "")
        if issued is None:
            # Unknown tokens still reach a workspace, which refuses them with Slack's error.
            return next(iter(self.teams.values())) if token else None
        return self.teams[issued.team_id]

    def _refusal_for(self, team_id: str) -> Any:
        def refusal(token: str) -> str | None:
            issued = self.tokens.get(token)
            if issued is None or issued.team_id != team_id:
                return "invalid_auth"
            if issued.expires_at is not None and issued.expires_at <= time.time():
                return "token_expired"
            return None

        return refusal

    # ------------------------------------------------------------------ consent page

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            params |= dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        problem = self._authorize_problem(params)
        if problem is not None:
            return HTMLResponse(f"<p>{html.escape(problem)}</p>", 400, headers=page_headers())
        if request.method == "GET":
            return HTMLResponse(self._consent_page(params), headers=page_headers())
        back: dict[str, str] = {"state": params.get("state", "")}
        emulator = self.teams.get(params.get("team", ""))
        user = emulator.workspace.find_user(params.get("user", "")) if emulator else None
        if "deny" in params:
            back["error"] = "access_denied"
        elif emulator is None or user is None or user.is_bot:
            return HTMLResponse(self._consent_page(params), 400, headers=page_headers())
        else:
            code = secrets.token_urlsafe(24)
            self._codes[code] = _Grant(
                emulator.workspace.team_id,
                user.id,
                params.get("scope", ""),
                params.get("redirect_uri", ""),
                time.time(),
            )
            back["code"] = code
        target = params.get("redirect_uri") or self.app.redirect_urls[0]
        separator = "&" if "?" in target else "?"
        return RedirectResponse(target + separator + urlencode(back), 302)

    def _authorize_problem(self, params: Mapping[str, str]) -> str | None:
        if params.get("client_id") != self.app.client_id:
            return "invalid_client_id: this app is not registered"
        redirect = params.get("redirect_uri")
        if redirect and redirect not in self.app.redirect_urls:
            return "bad_redirect_uri: not one of the app's redirect URLs"
        if not params.get("scope") and not params.get("user_scope"):
            return "invalid_scope: no scopes requested"
        return None

    def _consent_page(self, params: Mapping[str, str]) -> str:
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(params.get(name, ""))}">'
            for name in AUTH_PARAMS
        )
        teams = [self.teams[params["team"]]] if params.get("team") in self.teams else []
        forms = []
        for emulator in teams or self.teams.values():
            ws = emulator.workspace
            for user in (u for u in ws.users.values() if not u.is_bot):
                forms.append(
                    f'<form method="post">{hidden}'
                    f'<input type="hidden" name="team" value="{html.escape(ws.team_id)}">'
                    f'<button name="user" value="{html.escape(user.id)}">Allow in '
                    f"{html.escape(ws.team_name)} as {html.escape(user.real_name)}</button></form>"
                )
        scopes = html.escape(params.get("scope", ""))
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Install the app</title>"
            f"</head><body><h1>The app asks for: {scopes}</h1>{''.join(forms)}"
            f'<form method="post">{hidden}<button name="deny" value="1">Cancel</button></form>'
            "</body></html>"
        )

    # ------------------------------------------------------------------ oauth.v2.access

    async def access(self, request: Request) -> Response:
        args = dict(request.query_params)
        args |= dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        args |= basic_auth(request.headers.get("authorization", ""))
        if args.get("client_id") != self.app.client_id:
            return _error("invalid_client_id")
        if not hmac.compare_digest(args.get("client_secret", ""), self.app.client_secret):
            return _error("bad_client_secret")
        if args.get("grant_type") == "refresh_token":
            return self._refresh(args.get("refresh_token", ""))
        grant = self._codes.pop(args.get("code", ""), None)
        if grant is None or time.time() - grant.issued_at > CODE_TTL_SECONDS:
            return _error("invalid_code")
        if grant.redirect_uri and args.get("redirect_uri", "") != grant.redirect_uri:
            return _error("bad_redirect_uri")
        installation = _Installation(grant.team_id, grant.user_id, grant.scope)
        if self.app.token_rotation_enabled:
            installation.refresh_token = f"xoxe-1-{secrets.token_hex(20)}"
        self._revoke(grant.team_id)  # a reinstall replaces the team's tokens
        self.installations[grant.team_id] = installation
        self.exchanges.append("authorization_code")
        return JSONResponse(
            self._token_answer(installation) | {"authed_user": {"id": grant.user_id}}
        )

    def _refresh(self, refresh_token: str) -> Response:
        installation = next(
            (
                i
                for i in self.installations.values()
                if refresh_token and i.refresh_token == refresh_token
            ),
            None,
        )
        if installation is None:
            return _error("invalid_refresh_token")
        self.exchanges.append("refresh_token")
        return JSONResponse(self._token_answer(installation))

    def _token_answer(self, installation: _Installation) -> dict[str, Any]:
        ws = self.teams[installation.team_id].workspace
        rotating = installation.refresh_token is not None
        prefix = "xoxe.xoxb-1" if rotating else "xoxb"
        token = f"{prefix}-{ws.team_id}-{secrets.token_hex(16)}"
        expires_at = time.time() + self.app.expires_in if rotating else None
        self.tokens[token] = IssuedToken(ws.team_id, expires_at)
        installation.tokens.append(token)
        answer: dict[str, Any] = {
            "ok": True,
            "app_id": ws.app_id,
            "access_token": token,
            "token_type": "bot",
            "scope": installation.scope,
            "bot_user_id": ws.bot_user_id,
            "team": {"id": ws.team_id, "name": ws.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        if rotating:
            answer |= {
                "refresh_token": installation.refresh_token,
                "expires_in": self.app.expires_in,
            }
        return answer

    # ------------------------------------------------------------------ lifecycle

    def expire_tokens(self, team_id: str) -> None:
        """Every access token of the team expires now (its refresh token still works)."""
        for issued in self.tokens.values():
            if issued.team_id == team_id:
                issued.expires_at = time.time()

    def _revoke(self, team_id: str) -> None:
        for token in [t for t, issued in self.tokens.items() if issued.team_id == team_id]:
            del self.tokens[token]
        self.installations.pop(team_id, None)

    async def uninstall(self, team_id: str) -> None:
        """Someone removed the app from the workspace: tokens die, then the two events."""
        emulator = self.teams[team_id]
        self._revoke(team_id)
        if emulator.request_url is None and not emulator.socket.enabled:
            return  # nobody to tell
        bot = emulator.workspace.bot_user_id
        await emulator.send_event({"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [bot]}})
        await emulator.send_event({"type": "app_uninstalled"})


def _error(code: str) -> Response:
    return JSONResponse({"ok": False, "error": code})
