"""The console's signed cookies: the session (who signed in) and the sign-in in progress.

A cookie's value is ``base64url(json).base64url(hmac_sha256)``, keyed by the console
secret (``SWITCHBOARD_CONSOLE_SECRET``, or one derived from ``SLACK_CLIENT_SECRET``), so
a change to any byte is refused; each carries its purpose and expiry inside the signed part.
Cookies are ``HttpOnly``, ``SameSite=Lax``, ``Path=/console``, and ``Secure`` when the
console's URL is https. The session holds the CSRF token every action must echo in
``X-CSRF-Token`` (the page reads it from ``/console/api/me``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "switchboard_console"
LOGIN_COOKIE = "switchboard_console_login"
LOGIN_TTL_SECONDS = 600
COOKIE_PATH = "/console"


@dataclass(frozen=True)
class Session:
    user_id: str
    team_id: str
    name: str
    csrf: str
    expires: float


@dataclass(frozen=True)
class PendingLogin:
    """What the callback must see again: the ``state`` and ``nonce`` sent to Slack."""

    state: str
    nonce: str
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CookieSigner:
    def __init__(self, secret: str, *, secure: bool, session_seconds: float) -> None:
        if not secret:
            raise ValueError("the console needs a secret to sign its cookies")
        self._key = hashlib.sha256(b"switchboard-console:" + secret.encode()).digest()
        self.secure = secure
        self.session_seconds = session_seconds

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        body = _b64(json.dumps({"p": purpose, **payload}, separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    def unsign(self, purpose: str, value: str | None) -> dict[str, Any] | None:
        """The payload, or None when the value is missing, altered, for another use or expired."""
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(payload, dict) or payload.pop("p", None) != purpose:
            return None
        if not isinstance(payload.get("expires"), int | float) or payload["expires"] < time.time():
            return None
        return payload

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    # ------------------------------------------------------------------ session

    def new_session(self, user_id: str, team_id: str, name: str) -> Session:
        expires = time.time() + self.session_seconds
        return Session(user_id, team_id, name[:80], secrets.token_urlsafe(24), expires)

    def session(self, request: Request) -> Session | None:
        payload = self.unsign("session", request.cookies.get(SESSION_COOKIE))
        if payload is None:
            return None
        try:
            return Session(**payload)
        except TypeError:
            return None

    def set_session(self, response: Response, session: Session) -> None:
        self._set(response, SESSION_COOKIE, self.sign("session", asdict(session)))

    def clear_session(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)

    # ------------------------------------------------------------------ login

    def new_login(self) -> PendingLogin:
        return PendingLogin(
            secrets.token_urlsafe(24), secrets.token_urlsafe(24), time.time() + LOGIN_TTL_SECONDS
        )

    def pending_login(self, request: Request) -> PendingLogin | None:
        payload = self.unsign("login", request.cookies.get(LOGIN_COOKIE))
        if payload is None:
            return None
        try:
            return PendingLogin(**payload)
        except TypeError:
            return None

    def set_login(self, response: Response, login: PendingLogin) -> None:
        self._set(response, LOGIN_COOKIE, self.sign("login", asdict(login)), LOGIN_TTL_SECONDS)

    def clear_login(self, response: Response) -> None:
        response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)

    def _set(self, response: Response, name: str, value: str, max_age: float | None = None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=int(max_age or self.session_seconds),
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )


def csrf_ok(request: Request, session: Session) -> bool:
    given = request.headers.get("x-csrf-token", "")
    return bool(given) and hmac.compare_digest(given, session.csrf)
