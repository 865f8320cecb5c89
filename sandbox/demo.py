"""``switchboard demo``: the whole product in one process, on one port, without Slack.

One Starlette app serves the Slack emulator's Web API (``/api/*``), the sandbox
web page (``/`` and ``/sandbox/*``) and the bot itself (``/slack/events``,
``/healthz``). The bot is built by the same composition root as ``serve``; its
Web API client points at the emulator and the emulator delivers signed
requests back to the bot's ``/slack/events``, so every click on the page is a
real signed HTTP request in Slack's shape.

The walkthrough printed at start-up (and shown on the page) follows the workflows
loaded (``sandbox/demo_tips.py``): the bundled examples' tour, or one tip per workflow of
``--workflows DIR``, refreshed when a definition is edited. The banner names the workflows
folder and the database file; ``--reset`` empties that file first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount

from bot.logs import configure_logging
from bot.runtime import Runtime, build_runtime
from bot.server import create_asgi
from bot.settings import BUNDLED_WORKFLOWS, Settings, load_settings
from sandbox.demo_tips import WALKTHROUGH, demo_tips
from sandbox.slack import ChannelSeed, SlackEmulator, UserGroupSeed, UserSeed, WorkspaceSeed
from sandbox.slack.page import SameOriginGuard, SandboxPage, Tip, allowed_hosts
from sandbox.standins import Standins, with_examples
from workflows import migrate

log = logging.getLogger(__name__)

DEMO_DATABASE = Path("switchboard-demo.db")

# Who is who in the demo workspace: shown next to names in the page's user switcher.
PERSONAS: dict[str, str] = {
    "alice": "requester",
    "dana": "finance approver",
    "bob": "IT support",
    "carol": "team lead, triage",
    "erin": "campaign strategist",  # bundled examples (sandbox/standins/seed.py)
    "frank": "compliance officer",
}


def demo_workspace() -> WorkspaceSeed:
    """The demo's people, channels and groups (requester, approvers, IT, triage)."""
    return WorkspaceSeed(
        team_name="Switchboard Demo",
        team_domain="switchboard-demo",
        users=[
            UserSeed(name="alice", real_name="Alice Archer"),
            UserSeed(name="dana", real_name="Dana Dorsey"),
            UserSeed(name="bob", real_name="Bob Baker"),
            UserSeed(name="carol", real_name="Carol Chen", is_admin=True),
        ],
        channels=[
            ChannelSeed(name="general", purpose="Company-wide announcements and work."),
            ChannelSeed(name="requests", purpose="Ask for anything; Switchboard routes it."),
            ChannelSeed(
                name="finance-approvals",
                members=["dana", "carol", "alice"],
                purpose="Approval cards for invoices and spend.",
            ),
            ChannelSeed(name="it-help", purpose="Laptops, access, accounts."),
            ChannelSeed(
                name="triage",
                members=["carol", "bob", "dana"],
                purpose="Requests the AI was not sure about land here.",
            ),
        ],
        usergroups=[
            UserGroupSeed(handle="finance-leads", users=["dana"], description="Approve spend."),
            UserGroupSeed(handle="finance", users=["dana", "carol"]),
            UserGroupSeed(handle="it-oncall", users=["bob"]),
            UserGroupSeed(handle="triage", users=["carol"]),
        ],
    )


class DemoError(Exception):
    """The demo cannot start for a reason the person running it can fix (one line)."""


@dataclass(frozen=True)
class DemoOptions:
    host: str = "127.0.0.1"
    port: int = 3000
    database: Path | None = None
    reset: bool = False
    workflows: Path | None = None
    """The folder of workflows to demo (default: SWITCHBOARD_WORKFLOWS, else the bundled)."""


def local_host(host: str) -> str:
    """The address the in-process clients use to reach a server bound to ``host``."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def demo_settings(
    api_base: str, database: Path | None = None, workflows: Path | None = None, **extra: Any
) -> Settings:
    """The environment's settings, with the demo's defaults for whatever it leaves unset.

    The Web API always points at the in-process emulator: the demo never talks to Slack.
    """
    base = load_settings()
    given = base.model_fields_set
    overrides: dict[str, Any] = {
        "SLACK_API_URL": f"{api_base}/api/",
        # The console signs in with the emulator's Sign in with Slack, as the person chosen.
        "SLACK_CLIENT_ID": "demo.console",
        "SLACK_CLIENT_SECRET": secrets.token_hex(16),
        "SWITCHBOARD_CONSOLE_URL": api_base,
    }
    if "slack_bot_token" not in given:
        overrides["SLACK_BOT_TOKEN"] = f"xoxb-demo-{secrets.token_hex(12)}"
    if "slack_signing_secret" not in given:
        overrides["SLACK_SIGNING_SECRET"] = secrets.token_hex(16)
    if database is not None:
        overrides["DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"
    elif "database_url" not in given:
        overrides["DATABASE_URL"] = f"sqlite+aiosqlite:///./{DEMO_DATABASE}"
    if workflows is not None:
        if not workflows.is_dir():
            raise DemoError(f"--workflows {workflows}: no such folder")
        overrides["SWITCHBOARD_WORKFLOWS"] = workflows
    if "log_format" not in given:
        overrides["SWITCHBOARD_LOG_FORMAT"] = "console"
    return load_settings(**(overrides | extra))


class Demo:
    """The emulator, the page and the bot behind one ASGI app; see the module docstring."""

    def __init__(self, settings: Settings, base_url: str, *, run_workers: int = 1) -> None:
        self.settings = settings
        self.base_url = base_url
        self.emulator = SlackEmulator(
            settings.slack_signing_secret.get_secret_value(),
            settings.slack_bot_token.get_secret_value(),
            with_examples(demo_workspace()),  # + the bundled examples' people and channels
            request_url=f"{base_url}/slack/events",
            base_url=base_url,
        )
        secret = settings.slack_client_secret.get_secret_value()
        self.emulator.oidc.register(settings.slack_client_id, secret)  # the console's sign-in
        # The page links to the console, which signs in as the person the page acts as.
        self.page = SandboxPage(self.emulator, personas=PERSONAS, console="/console/auth/login")
        # --- stand-ins hook: the bundled examples' ERP/CRM/ads/IAM/tickets/GRC + SMTP sink,
        # served under /standins; their URLs and tokens are the bot's connection variables.
        self.standins = Standins.beside(settings.database_url, f"{base_url}/standins")
        env = {**os.environ, **self.standins.env}
        self.runtime: Runtime = build_runtime(settings, run_workers=run_workers, env=env)
        self._bot_started = False
        self.follow_definitions()

    @property
    def tips(self) -> tuple[Tip, ...]:
        """The tour of the workflows loaded now (``sandbox/demo_tips.py``)."""
        bundled = self.settings.workflows_dir.resolve() == BUNDLED_WORKFLOWS.resolve()
        channels = [c.name for c in self.emulator.workspace.channels.values()]
        return demo_tips(self.runtime.workflows, channels, bundled=bundled)

    def follow_definitions(self) -> None:
        """The page's tips now, and again after every reload of the definitions."""
        self.page.walkthrough = self.tips
        watcher = self.runtime.watcher
        if watcher is None:
            return
        changed = watcher.on_change

        async def refresh() -> None:
            if changed is not None:
                await changed()
            self.page.walkthrough = self.tips

        watcher.on_change = refresh

    @property
    def database_file(self) -> Path | None:
        """The SQLite file the demo keeps its runs in; None for another database."""
        url = self.settings.database_url
        prefix = "sqlite+aiosqlite:///"
        return Path(url.removeprefix(prefix)).resolve() if url.startswith(prefix) else None

    @functools.cached_property
    def asgi(self) -> Starlette:
        # The bot's own app is the fallback mount; its lifespan is ours to run (see start_bot).
        routes = [
            *self.emulator.asgi_app.routes,
            *self.page.routes,
            Mount("/standins", app=self.standins.app),  # stand-ins hook
            Mount("", app=create_asgi(self.runtime)),
        ]
        # Acting as anyone is the page's purpose: only the page itself may (see SameOriginGuard).
        address = urlsplit(self.base_url)
        hosts = allowed_hosts(address.hostname or "", address.port or 80)
        guard = Middleware(SameOriginGuard, hosts=hosts)
        return Starlette(routes=routes, middleware=[guard], lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.stop()

    async def prepare_database(self, reset: bool = False) -> None:
        """Migrate the store (and with ``reset``, start from an empty SQLite file)."""
        path = self.database_file
        if reset and path is None:
            raise DemoError("--reset empties only a SQLite file; DATABASE_URL names another")
        if reset and path is not None:
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
        await migrate.upgrade(self.runtime.store)

    def about(self) -> tuple[str, ...]:
        """What the banner says of the workflows and the database it runs on."""
        loaded, skipped = len(self.runtime.workflows), len(self.runtime.definition_errors)
        problems = f", {skipped} with errors (see the log above)" if skipped else ""
        file = self.database_file
        where = f"{file} (--reset starts empty)" if file else "DATABASE_URL (not a file)"
        return (
            f"Workflows: {self.settings.workflows_dir} ({loaded} loaded{problems})",
            f"Database: {where}",
        )

    async def start_bot(self) -> None:
        """Start workers and learn the bot's identity; call once the server is listening.

        ``auth.test`` goes to the emulator on this very server, so this cannot run in
        the ASGI lifespan start-up, which uvicorn completes before it accepts requests.
        """
        self.standins.start()  # stand-ins hook: the SMTP sink
        await self.runtime.start()
        self._bot_started = True

    async def stop(self) -> None:
        self.page.close()
        if self._bot_started:
            self._bot_started = False
            await self.runtime.stop()
        self.standins.stop()  # stand-ins hook
        await self.emulator.aclose()


def walkthrough_text(
    url: str, tips: tuple[Tip, ...] = WALKTHROUGH, about: tuple[str, ...] = ()
) -> str:
    lines = [
        "",
        f"  Switchboard sandbox is running: open {url}",
        "  A local Slack stand-in: act as Alice, Dana, Bob, Carol, Erin or Frank and use"
        " every workflow.",
        *(f"  {line}" for line in about),
        "",
    ]
    for number, tip in enumerate(tips, start=1):
        lines.append(f"  {number}. {tip.title}: as {tip.user.title()} in #{tip.channel}, type")
        lines.append(f"       {tip.text}")
        lines.append(f"     {tip.expect}")
    lines += ["", "  Ctrl-C stops it.", ""]
    return "\n".join(lines)


class _DemoServer(uvicorn.Server):
    """uvicorn waits for open responses before it stops; ending the page's live
    streams on the first Ctrl-C lets it stop at once."""

    def __init__(self, config: uvicorn.Config, page: SandboxPage) -> None:
        super().__init__(config)
        self._page = page

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._page.close()
        super().handle_exit(sig, frame)


def bind(host: str, port: int) -> socket.socket:
    """Bind before building anything, so a busy port is one clear error (and port 0 works)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DemoError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            " (is another demo running? try --port 3001)"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def run_demo(options: DemoOptions) -> None:
    """Serve the demo until interrupted (uvicorn handles SIGINT/SIGTERM)."""
    sock = bind(options.host, options.port)
    port = int(sock.getsockname()[1])
    base = f"http://{local_host(options.host)}:{port}"
    try:
        settings = demo_settings(base, options.database, options.workflows)
    except DemoError:
        sock.close()
        raise
    setup_logging(settings)
    demo = Demo(settings, base)
    await demo.prepare_database(reset=options.reset)
    config = uvicorn.Config(
        demo.asgi,
        log_level="warning",
        log_config=None,  # uvicorn's lines go through our scrubbed log chain (bot/logs.py)
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
    )
    server = _DemoServer(config, demo.page)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            return
        await asyncio.sleep(0.02)
    await demo.start_bot()
    # Edit a workflow file and the next run uses it (polled every 2 s; SIGHUP: at once).
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, demo.runtime.request_reload)
    url = f"http://{local_host(options.host)}:{port}/"
    print(walkthrough_text(url, demo.tips, demo.about()), flush=True)
    await task


def setup_logging(settings: Settings) -> None:
    """Human-readable console logs, scrubbed of secrets like every other mode's."""
    configure_logging(level=settings.log_level, fmt=settings.log_format, secrets=settings.secrets())
    # One line per HTTP call between the bot and the emulator drowns the walkthrough.
    for noisy in ("httpx", "slack_bolt", "slack_sdk", "aiosqlite", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
