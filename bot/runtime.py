"""The composition root: builds every long-lived object from the settings, once.

``Runtime`` owns the store, the loaded workflows, the Slack client and chat,
the engine and its workers, and the Bolt app. ``serve``, ``worker``, ``demo``
and the tests all build one of these; nothing else constructs collaborators.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.ai import build_ai
from bot.app import build_app
from bot.background import Background
from bot.connections import build_registry
from bot.deps import BotDeps
from bot.function_steps import SlackFunctionSteps
from bot.identity import IdentityCache
from bot.logs import Scrubber
from bot.metrics import MeteredAI, Metrics
from bot.notifier import ChannelPacer, SlackChat, make_web_client
from bot.oauth import MultiWorkspace, multi_workspace
from bot.people import resolve_at_start
from bot.reload import DefinitionWatcher
from bot.render import Renderer
from bot.route_access import RouteAccess
from bot.settings import Settings, open_store
from bot.socket_mode import SocketModeIngress, socket_mode_ingress
from bot.starters import StarterPolicy
from bot.tracing import Tracing
from bot.webhooks import WebhookKey, resolve_webhook_keys
from workflows.engine import Engine
from workflows.function_runs import APPROVAL_WORKFLOW
from workflows.ingress_load import IngressLoad
from workflows.language.triggers import MessageTrigger, ReactionTrigger
from workflows.language.workflow import Workflow
from workflows.loader import CheckContext, DefinitionError, LoadResult, load_folder
from workflows.null_chat import NullChat
from workflows.ports import Chat, ChatError, Clock, SystemClock
from workflows.retention import purge_every
from workflows.runs import warm_up
from workflows.scheduler import Scheduler
from workflows.steps.base import Services
from workflows.store import Store
from workflows.worker import Worker

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    store: Store
    workflows: dict[str, Workflow]
    definition_errors: list[DefinitionError]
    renderer: Renderer
    client: AsyncWebClient
    engine: Engine
    app: AsyncApp
    identity: IdentityCache
    deps: BotDeps
    run_workers: int
    default_concurrency: int = 8
    """Jobs in flight per in-process worker when not configured: few beside an HTTP ingress
    (worker tasks share its event loop: at 32, acks at 100 req/s waited p50 133 ms on
    PostgreSQL, at 4 25 ms); `switchboard worker` processes run 32."""
    multi: MultiWorkspace | None = None
    """Set in multi-workspace mode (``bot/oauth.py``): installations instead of one token."""
    socket_mode: SocketModeIngress | None = None
    """Set when ``SLACK_APP_TOKEN`` is: Slack's requests then arrive over a WebSocket."""
    scheduler: Scheduler | None = None
    """Schedules and threshold checks; started only when ``settings.run_scheduler``."""
    webhook_keys: dict[str, list[WebhookKey]] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    """This process's metrics (``GET /metrics``); also the engine's observer."""
    tracing: Tracing = field(default_factory=Tracing)
    """This process's trace export (``bot/tracing.py``); no-op spans unless configured."""
    watcher: DefinitionWatcher | None = None
    """Hot reload of the workflows folder (``bot/reload.py``); started with the runtime."""
    env: Mapping[str, str] | None = None
    """What definitions name (webhook ``secret_env``); None: os.environ."""
    ingress_load: IngressLoad = field(default_factory=IngressLoad)
    """Requests the HTTP ingress has in flight (``bot/server.py`` counts them); the
    in-process workers claim and start steps when it is quiet, within a bound."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _watching: asyncio.Task[None] | None = None
    _retention: asyncio.Task[None] | None = None
    _workers: list[Worker] = field(default_factory=list)

    async def start(self) -> None:
        # One connection pool for every Web API call: without it slack_sdk opens a session
        # (a TCP connection, a TLS handshake against Slack) per call.
        self.client.session = aiohttp.ClientSession()
        # One workspace: who the bot is, and @name, e-mails -> user ids (bot/people.py).
        if self.multi is None and await self.identity.load() is not None:
            await resolve_at_start(self.workflows, self.client)
        await self._warm_database()
        await self._resolve_watched_channels()
        if self.deps.starters is not None:
            await self.deps.starters.start()
        if self.deps.route_access is not None:
            await self.deps.route_access.start()
        if self.socket_mode is not None:
            await self.socket_mode.start()
        for error in self.definition_errors:
            log.warning("workflow definition skipped: %s", error)
        await self._watch_definitions()
        for _ in range(self.run_workers):
            worker = Worker(
                self.engine,
                concurrency=self.settings.worker_concurrency or self.default_concurrency,
                poll_seconds=self.settings.poll_seconds,
                ingress=self.ingress_load,
            )
            self._workers.append(worker)
            self._tasks.append(asyncio.create_task(worker.run(), name="switchboard-worker"))
        if self.scheduler is not None and self.settings.run_scheduler:
            await self.scheduler.start()
        elif self.run_workers:  # the scheduler purges hourly; without one, the workers do
            self._retention = asyncio.create_task(
                purge_every(
                    self.store,
                    self.workflows,
                    self.settings.retention_days,
                    self.engine.clock,
                    actor="worker",
                ),
                name="switchboard-retention",
            )

    async def _resolve_watched_channels(self) -> None:
        """``#name`` in message/reaction triggers -> channel IDs, once (not on the ack path)."""
        names = {
            channel[1:]
            for workflow in self.workflows.values()
            for trigger in workflow.triggers
            for channel in [_watched_channel(trigger)]
            if channel and channel.startswith("#")
        }
        chat = self.engine.chat
        for name in sorted(names):
            try:
                self.deps.channel_ids[name] = await chat.resolve_channel(f"#{name}")
            except ChatError as exc:
                log.warning("cannot watch #%s: %s", name, exc)

    async def _warm_database(self) -> None:
        """Open the pool's first connection and compile the ack path now, not on the first ack."""
        self.renderer.warm_up()
        try:
            for workflow in list(self.workflows.values())[:1]:
                await warm_up(self.store, workflow, self.engine.clock.now())
        except OSError as exc:
            log.warning("database not reachable at start-up: %s", type(exc).__name__)

    async def _watch_definitions(self) -> None:
        """Store the loaded versions (runs pin them), then follow edits of the folder."""
        try:
            built_in = {APPROVAL_WORKFLOW.name: APPROVAL_WORKFLOW}  # "Ask for approval" steps
            await self.engine.registry.record(self.workflows | built_in, self.engine.clock.now())
        except OSError as exc:  # the engine finds live versions without their rows
            log.warning("workflow versions not recorded: %s", type(exc).__name__)
        if self.watcher is not None:
            self.watcher.seen(self.definition_errors)
            self._watching = asyncio.create_task(self.watcher.run(), name="switchboard-reload")

    async def _definitions_changed(self) -> None:
        """After a reload: webhook secrets and watched channels follow the new definitions.
        Both dicts are held by their users (the receiver, the listeners): updated in place."""
        keys = resolve_webhook_keys(self.workflows, os.environ if self.env is None else self.env)
        self.webhook_keys.clear()
        self.webhook_keys.update(keys)
        await self._resolve_watched_channels()

    def request_reload(self) -> None:
        """Reload the workflows folder now (``SIGHUP``)."""
        if self.watcher is not None:
            self.watcher.request_reload()

    async def stop(self) -> None:
        for background in (self._watching, self._retention):
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
        self._watching = self._retention = None
        if self.deps.starters is not None:
            await self.deps.starters.stop()
        if self.deps.route_access is not None:
            await self.deps.route_access.stop()
        if self.socket_mode is not None:
            await self.socket_mode.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        for worker in self._workers:
            worker.stop()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._workers.clear()
        if self.engine.services.connectors is not None:
            await self.engine.services.connectors.aclose()
        if self.engine.services.ai is not None:
            await self.engine.services.ai.aclose()
        await self.store.dispose()
        if self.client.session is not None:
            await self.client.session.close()
            self.client.session = None
        await asyncio.to_thread(self.tracing.shutdown)  # sends the last batch of spans


def build_runtime(
    settings: Settings,
    *,
    run_workers: int = 1,
    clock: Clock | None = None,
    env: Mapping[str, str] | None = None,
) -> Runtime:
    """``env`` holds what definitions and ``connections.yaml`` name (webhook ``secret_env``,
    connection ``*_env``); default: os.environ."""
    clock = clock or SystemClock()
    metrics = Metrics()
    tracing = Tracing.from_endpoint(settings.otel_endpoint, settings.otel_service_name)
    store = open_store(settings)
    renderer = Renderer(settings.templates_dir)
    hooks = dataclasses.replace(metrics.connector_hooks(), tracer=tracing.tracer)
    connectors = build_registry(settings.workflows_dir, env, hooks=hooks)
    check = CheckContext(
        templates_dir=settings.templates_dir,
        connections=frozenset(connectors.names),
        connection_types={name: connectors.get(name).kind for name in connectors.names},
    )
    loaded = load_folder(settings.workflows_dir, check)
    client = make_web_client(
        settings.slack_bot_token.get_secret_value(),
        settings.slack_api_url,
        metrics=metrics,
        max_retries=settings.slack_max_retries,
        tracer=tracing.tracer,
    )
    multi = multi_workspace(settings, store, clock, client)
    chat = _chat(settings, client, renderer, multi)
    engine = Engine(
        store=store,
        workflows=loaded.workflows,
        chat=chat,
        clock=clock,
        owner=worker_identity(),
        lease_seconds=settings.lease_seconds,
        services=Services(
            connectors=connectors,
            ai=MeteredAI(build_ai(settings), metrics, tracing.tracer),
            steps_dir=settings.workflows_dir / "steps",
        ),
        observer=metrics,
        tracer=tracing.tracer,
        function_steps=SlackFunctionSteps(client),  # Workflow Builder steps' completions
    )
    webhook_keys = resolve_webhook_keys(loaded.workflows, os.environ if env is None else env)
    deps = BotDeps(
        store=store,
        workflows=loaded.workflows,
        renderer=renderer,
        clock=clock,
        wakeup=engine.wakeup,
        starters=StarterPolicy(loaded.workflows, chat),
        route_access=RouteAccess(loaded.workflows, chat, settings.admin_ids()),
        channel_id_of=chat.resolve_channel if multi is not None else None,
    )
    identity = IdentityCache(client)
    background = Background()
    app = build_app(
        deps,
        client=client,
        identity=identity,
        background=background,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        multi=multi,
    )
    runtime = Runtime(
        settings=settings,
        store=store,
        workflows=loaded.workflows,
        definition_errors=loaded.errors,
        renderer=renderer,
        client=client,
        engine=engine,
        app=app,
        identity=identity,
        deps=deps,
        multi=multi,
        socket_mode=socket_mode_ingress(settings, app, client, metrics),
        run_workers=run_workers,
        scheduler=Scheduler(
            store,
            loaded.workflows,
            clock,
            connectors=connectors,
            wakeup=engine.wakeup,
            retention_days=settings.retention_days,
        ),
        webhook_keys=webhook_keys,
        metrics=metrics,
        tracing=tracing,
        watcher=_watcher(settings, check, loaded, engine),
        env=env,
    )
    if runtime.watcher is not None:
        runtime.watcher.on_change = runtime._definitions_changed
        if multi is None:  # names are one workspace's: resolved only with one (as at start)
            runtime.watcher.prepare = functools.partial(resolve_at_start, client=client)
    return runtime


def _watcher(
    settings: Settings, check: CheckContext, loaded: LoadResult, engine: Engine
) -> DefinitionWatcher:
    return DefinitionWatcher(
        folder=settings.workflows_dir,
        check=check,
        live=loaded.workflows,
        versions=engine.registry,
        clock=engine.clock,
        files=dict(loaded.files),
    )


def _chat(
    settings: Settings, client: AsyncWebClient, renderer: Renderer, multi: MultiWorkspace | None
) -> Chat:
    """Slack when a bot token is configured, or installations (each run posts with its
    workspace's token); otherwise a chat that sends nothing and says so (a worker for
    webhook-only workflows), so nothing below asks whether chat exists."""
    if multi is None and not settings.slack_bot_token.get_secret_value():
        log.warning("SLACK_BOT_TOKEN is not set: runs get no Slack thread, chat steps fail")
        return NullChat()
    return SlackChat(
        client,
        renderer,
        ChannelPacer(settings.slack_post_burst, settings.slack_posts_per_second),
        Scrubber(settings.secrets()),
        tokens=multi.tokens if multi is not None else None,
    )


def _watched_channel(trigger: object) -> str | None:
    if isinstance(trigger, MessageTrigger):
        return trigger.message.channel
    if isinstance(trigger, ReactionTrigger):
        return trigger.reaction.channel
    return None


def worker_identity() -> str:
    """Unique per process: a lease names the process that holds it."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{os.urandom(3).hex()}"
