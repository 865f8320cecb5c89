"""Sign in with Slack (OpenID Connect, authorization code flow) for the console.

``/console/auth/login`` sends the browser to Slack's authorize page with a fresh
``state`` and ``nonce`` (kept in a signed, 10-minute cookie); ``/console/auth/callback``
checks ``state``, exchanges the code (``openid.connect.token``, client id and secret),
checks the id token's ``nonce``, audience, issuer and expiry, reads the person
(``openid.connect.userInfo``) and refuses anyone of another workspace than the bot's.
The id token comes straight from Slack's token endpoint over TLS, which OpenID Connect
Core (3.1.3.7) accepts in place of checking its signature. Then a signed session cookie.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from bot.console.config import ConsoleConfig
from bot.console.session import CookieSigner

log = logging.getLogger(__name__)
ISSUER = "https://slack.com"
SCOPES = "openid profile email"
_HINT = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class SignInError(Exception):
    """The sign-in cannot finish; the message is one line for the person."""


class SignIn:
    def __init__(
        self, config: ConsoleConfig, signer: CookieSigner, team_id: Callable[[], str | None]
    ) -> None:
        self.config = config
        self.signer = signer
        self._team_id = team_id
        self._client = AsyncWebClient(base_url=config.api_url, timeout=10)

    async def login(self, request: Request) -> Response:
        """To Slack's authorize page; a ``login_hint`` (a user id or name) is passed on."""
        pending = self.signer.new_login()
        hint = request.query_params.get("login_hint", "")
        query = {
            "response_type": "code",
            "scope": SCOPES,
            "client_id": self.config.client_id,
            "state": pending.state,
            "nonce": pending.nonce,
            "redirect_uri": self.config.redirect_uri,
        } | ({"login_hint": hint} if _HINT.match(hint) else {})
        response = RedirectResponse(f"{self.config.authorize_url}?{urlencode(query)}", 302)
        self.signer.set_login(response, pending)
        return response

    async def callback(self, request: Request) -> Response:
        try:
            user_id, team_id, name = await self._finish(request)
        except SignInError as exc:
            response: Response = PlainTextResponse(f"Sign-in failed: {exc}", status_code=400)
            self.signer.clear_login(response)
            return response
        response = RedirectResponse("/console/", 303)
        self.signer.clear_login(response)
        self.signer.set_session(response, self.signer.new_session(user_id, team_id, name))
        log.info("console sign-in", extra={"user_id": user_id, "team_id": team_id})
        return response

    async def _finish(self, request: Request) -> tuple[str, str, str]:
        pending = self.signer.pending_login(request)
        if pending is None:
            raise SignInError("the sign-in expired or did not start here; try again")
        state = request.query_params.get("state", "")
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise SignInError("the state does not match this sign-in; try again")
        if request.query_params.get("error"):
            raise SignInError(f"Slack said {request.query_params['error'][:60]}")
        code = request.query_params.get("code", "")
        if not code:
            raise SignInError("Slack sent no code")
        tokens = await self._call(
            self._client.openid_connect_token(
                client_id=self.config.client_id,
                client_secret=self.config.client_secret,
                code=code,
                redirect_uri=self.config.redirect_uri,
            )
        )
        self._check_id_token(str(tokens.get("id_token", "")), pending.nonce)
        info = await self._call(
            self._client.openid_connect_userInfo(token=str(tokens.get("access_token", "")))
        )
        user_id = str(info.get("https://slack.com/user_id") or info.get("sub") or "")
        team_id = str(info.get("https://slack.com/team_id") or "")
        expected = self._team_id()
        if not user_id or not team_id or (expected and team_id != expected):
            raise SignInError("this account is not in the bot's Slack workspace")
        return user_id, team_id, str(info.get("name") or user_id)

    async def _call(self, call: Any) -> dict[str, Any]:
        try:
            response = await call
        except SlackApiError as exc:
            raise SignInError(f"Slack refused: {exc.response.get('error', 'error')}") from None
        except (OSError, TimeoutError):
            raise SignInError("Slack could not be reached") from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    def _check_id_token(self, token: str, nonce: str) -> None:
        claims = _claims(token)
        if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise SignInError("the id token's nonce does not match this sign-in")
        if claims.get("aud") != self.config.client_id or claims.get("iss") != ISSUER:
            raise SignInError("the id token is not for this app")
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            raise SignInError("the id token has expired")


def _claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise SignInError("Slack sent no usable id token")
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        raise SignInError("Slack sent no usable id token") from None
    if not isinstance(claims, dict):
        raise SignInError("Slack sent no usable id token")
    return claims
