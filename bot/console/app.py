"""The console's HTTP surface under ``/console``: the page, sign-in, and its JSON API.

- ``GET /console/`` the page (``static/``: plain HTML, CSS and ES modules, no build step);
  without a session it sends the browser to sign in with Slack.
- ``GET /console/auth/login``, ``/console/auth/callback``, ``POST /console/auth/logout``.
- ``GET /console/api/me``: who is signed in, whether an admin, the CSRF token.
- ``GET /console/api/runs``: the list (``bot/console/runs_list.py``).
- ``GET /console/api/runs/{id}``: one run (``run_view.py``); ``…/events``: SSE ``change``.
- ``POST /console/api/runs/{id}/{cancel|retry|remind}``: actions (``actions.py``).
- ``GET /console/api/workflows``, ``/console/api/health``: catalogue and health.

Every request passes ``guard.refusal`` (Host, Origin, JSON) and every answer gets the
console's CSP (``guard.harden``). The API answers 401 without a session, 403 without the
CSRF token, 404 for a run the viewer may not see, 400/409 with one line for bad input.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import BaseRoute, Route

from bot.console import actions, live, overview, run_view
from bot.console.config import ConsoleConfig
from bot.console.guard import harden, refusal
from bot.console.runs_list import BadQuery, RunQuery, list_runs
from bot.console.session import CookieSigner, Session, csrf_ok
from bot.console.signin import SignIn
from bot.http_limits import BodyTooLarge, IncompleteBody, read_capped
from bot.runtime import Runtime
from workflows import runs
from workflows.ports import CHAT_WORKSPACE, ChatWorkspace
from workflows.team_scope import READ_SCOPE, TeamScope

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"console.js", "api.js", "views.js", "style.css"}
DISABLED = (
    "The console is not enabled: set SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and "
    "SWITCHBOARD_CONSOLE_URL."
)
Handler = Callable[[Request], Awaitable[StarletteResponse]]
ApiHandler = Callable[[Request, Session], Awaitable[StarletteResponse]]


def _error(status: int, message: str) -> StarletteResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status)


class Console:
    def __init__(self, runtime: Runtime, config: ConsoleConfig) -> None:
        self.runtime = runtime
        self.deps = runtime.deps
        self.config = config
        self.signer = CookieSigner(
            config.secret, secure=config.secure, session_seconds=config.session_hours * 3600
        )

        def team() -> str | None:
            identity = runtime.identity.identity
            return identity.team_id if identity is not None else None

        self.signin = SignIn(config, self.signer, team)
        self.links = overview.Permalinks(runtime.client)

    def routes(self) -> list[BaseRoute]:
        api: dict[str, tuple[ApiHandler, list[str]]] = {
            "/console/api/me": (self.me, ["GET"]),
            "/console/api/runs": (self.runs, ["GET"]),
            "/console/api/runs/{run_id}": (self.run, ["GET"]),
            "/console/api/runs/{run_id}/events": (self.events, ["GET"]),
            "/console/api/runs/{run_id}/{action}": (self.act, ["POST"]),
            "/console/api/workflows": (self.workflows, ["GET"]),
            "/console/api/health": (self.health, ["GET"]),
            "/console/auth/logout": (self.logout, ["POST"]),
        }
        return [
            Route("/console", self._guarded(self.to_page), methods=["GET"]),
            Route("/console/", self._guarded(self.page), methods=["GET"]),
            Route("/console/static/{name}", self._guarded(self.asset), methods=["GET"]),
            Route("/console/auth/login", self._guarded(self.signin.login), methods=["GET"]),
            Route("/console/auth/callback", self._guarded(self.signin.callback), methods=["GET"]),
            *(
                Route(path, self._guarded(self._signed_in(handler)), methods=methods)
                for path, (handler, methods) in api.items()
            ),
        ]

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> StarletteResponse:
            refused = refusal(request, self.config)
            return refused if refused is not None else harden(await handler(request))

        return guarded

    def _signed_in(self, handler: ApiHandler) -> Handler:
        async def signed_in(request: Request) -> StarletteResponse:
            session = self.signer.session(request)
            if session is None:
                return _error(401, "sign in first: /console/auth/login")
            if request.method == "POST" and not csrf_ok(request, session):
                return _error(403, "missing or wrong CSRF token; reload the console")
            # Where the console's team scope is enforced: everything this request reads or
            # changes is of the signed-in person's workspace (workflows/team_scope.py).
            unassigned = self.runtime.multi is None
            READ_SCOPE.set(TeamScope(session.team_id or "-", unassigned=unassigned))
            CHAT_WORKSPACE.set(ChatWorkspace(session.team_id) if session.team_id else None)
            return await handler(request, session)

        return signed_in

    # ------------------------------------------------------------------ page

    async def to_page(self, _request: Request) -> StarletteResponse:
        return RedirectResponse("/console/", 308)

    async def page(self, request: Request) -> StarletteResponse:
        if self.signer.session(request) is None:
            return RedirectResponse("/console/auth/login", 303)
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def asset(self, request: Request) -> StarletteResponse:
        name = request.path_params["name"]
        if name not in ASSETS:
            return PlainTextResponse("not found", status_code=404)
        response = FileResponse(STATIC / name)
        response.headers["Cache-Control"] = "no-cache"
        return response

    async def logout(self, _request: Request, _session: Session) -> StarletteResponse:
        response = JSONResponse({"ok": True})
        self.signer.clear_session(response)
        return response

    # ------------------------------------------------------------------ api

    def _admin(self, session: Session) -> bool:
        access = self.deps.route_access
        return access is not None and access.is_admin(session.user_id)

    async def me(self, _request: Request, session: Session) -> StarletteResponse:
        return JSONResponse(
            {
                "user": session.user_id,
                "name": session.name,
                "team": session.team_id,
                "admin": self._admin(session),
                "csrf": session.csrf,
            }
        )

    async def runs(self, request: Request, session: Session) -> StarletteResponse:
        try:
            query = RunQuery.parse(dict(request.query_params))
        except BadQuery as exc:
            return _error(400, str(exc))
        found = await list_runs(self.deps.store, query, session.user_id, self._admin(session))
        return JSONResponse(found)

    async def run(self, request: Request, session: Session) -> StarletteResponse:
        run_id = request.path_params["run_id"]
        try:
            await actions.authorise(self.deps, run_id, session.user_id)
        except actions.NotVisible:
            return _error(404, f"there is no run {run_id[:64]}")
        found = await run_view.read_run(self.deps.store, run_id)
        if found is None:
            return _error(404, f"there is no run {run_id[:64]}")
        body = await overview.run_page(self.runtime, found, self.links)
        return JSONResponse(body)

    async def events(self, request: Request, session: Session) -> StarletteResponse:
        run_id = request.path_params["run_id"]
        try:
            await actions.authorise(self.deps, run_id, session.user_id)
        except actions.NotVisible:
            return _error(404, f"there is no run {run_id[:64]}")
        return live.stream(request, self.deps.store, run_id)

    async def act(self, request: Request, session: Session) -> StarletteResponse:
        run_id, name = request.path_params["run_id"], request.path_params["action"]
        action = actions.ACTIONS.get(name)
        if action is None:
            return _error(404, f"no action {name[:32]}")
        try:
            body = json.loads(await read_capped(request, 16 * 1024) or b"{}")
        except (BodyTooLarge, IncompleteBody):
            return _error(413, "the request is too large")
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        try:
            run, actor = await actions.authorise(self.deps, run_id, session.user_id)
            message = await action(self.deps, run, actor, body)
        except actions.NotVisible:
            return _error(404, f"there is no run {run_id[:64]}")
        except runs.RunNotFound:
            return _error(404, f"there is no run {run_id[:64]}")
        except runs.RunStateError as exc:
            return _error(409, str(exc))
        return JSONResponse({"ok": True, "message": message})

    async def workflows(self, _request: Request, _session: Session) -> StarletteResponse:
        return JSONResponse(await overview.catalogue(self.runtime))

    async def health(self, _request: Request, _session: Session) -> StarletteResponse:
        return JSONResponse(await overview.health(self.runtime))


def console_routes(runtime: Runtime, config: ConsoleConfig) -> list[BaseRoute]:
    if not config.enabled:

        async def disabled(_request: Request) -> StarletteResponse:
            return PlainTextResponse(DISABLED, status_code=404)

        return [Route("/console{rest:path}", disabled, methods=["GET", "POST"])]
    return Console(runtime, config).routes()
