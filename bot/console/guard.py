"""Who may reach the console at all: its own Host, its own Origin, JSON actions.

Every console response carries a strict Content-Security-Policy (scripts and styles from
the console itself only; the page inserts text with ``textContent``, never markup) and
``frame-ancestors 'none'``. A request for another Host (a DNS-rebound name) is refused; a
state-changing request must come from the console's own origin (``Origin`` and
``Sec-Fetch-Site``) and, for the API, carry ``application/json`` and the session's CSRF
token (checked by the API, which knows the session). Refusals are 403/415 with one reason.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.console.config import ConsoleConfig

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self' https:; base-uri 'none'; frame-ancestors 'none'"
)
SAFE_METHODS = frozenset({"GET", "HEAD"})
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})


def refusal(request: Request, config: ConsoleConfig) -> Response | None:
    host = request.headers.get("host", "").lower()
    if host != config.host:
        return _refuse(403, "unknown Host: the console answers only on SWITCHBOARD_CONSOLE_URL")
    if request.method in SAFE_METHODS:
        return None
    origin = request.headers.get("origin")
    if origin is not None and origin.lower() != config.origin:
        return _refuse(403, "cross-origin request refused")
    if request.headers.get("sec-fetch-site", "same-origin") not in SAME_SITE_FETCHES:
        return _refuse(403, "cross-site request refused")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.url.path.startswith("/console/api/") and media_type != "application/json":
        return _refuse(415, "an action's body must be application/json")
    return None


def harden(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _refuse(status: int, reason: str) -> Response:
    return harden(JSONResponse({"ok": False, "error": reason}, status_code=status))
