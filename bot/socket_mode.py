"""Slack's requests over Socket Mode (``SLACK_APP_TOKEN`` set): the same Bolt app, a WebSocket.

Bolt's ``AsyncSocketModeHandler`` with slack_sdk's aiohttp client opens the
link with ``apps.connections.open`` through our Web API client (so
``SLACK_API_URL`` points it at the emulator, as it does every other call),
hands each envelope to the same ``AsyncApp`` and acks with the listener's
answer as the envelope's payload. Bolt runs the listeners with
``process_before_response=True`` here too, so the ack leaves when the listener
returns, after its one short transaction — exactly as over HTTP.

Exactly-once does not depend on the link: Slack re-delivers an envelope whose
ack it did not get (a reconnect, a refresh), and every listener's start is keyed
(a command's ``trigger_id``, a message's channel and ts, a click decides in one
transaction), so a second delivery finds what the first one did.

The handler is built in :meth:`SocketModeIngress.start`, on the running loop:
slack_sdk's client opens an aiohttp session and starts a task in its constructor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import (
    run_async_bolt_app,
    send_async_response,
)
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.logs import log_context
from bot.metrics import Metrics
from bot.settings import ConfigurationError, Settings
from bot.slack_ingress import SlackRequest, describe_slack_payload

log = logging.getLogger(__name__)

PING_INTERVAL_SECONDS = 10.0
"""slack_sdk's default: a link that misses four pings in a row is replaced."""
REFUSED_TOKEN_ERRORS = frozenset(
    {"not_authed", "invalid_auth", "not_allowed_token_type", "account_inactive", "token_revoked"}
)


class SocketModeIngress:
    """Receives Slack's requests over Socket Mode and answers them through the Bolt app."""

    def __init__(
        self, app: AsyncApp, app_token: str, client: AsyncWebClient, metrics: Metrics
    ) -> None:
        self._app = app
        self._app_token = app_token
        self._client = client
        self._metrics = metrics
        self._handler: AsyncSocketModeHandler | None = None
        self._connecting: asyncio.Task[None] | None = None

    async def verify(self) -> None:
        """Ask for a link URL once before serving: a token Slack refuses stops start-up with
        one line. (slack_sdk would retry it every ping interval forever, logging tracebacks.)
        An unreachable Slack is an outage, not a configuration error: start-up goes on."""
        try:
            await self._client.apps_connections_open(app_token=self._app_token)
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            if error in REFUSED_TOKEN_ERRORS:
                raise ConfigurationError(
                    f"configuration error: SLACK_APP_TOKEN: Slack refused it ({error})"
                ) from None
            log.warning("apps.connections.open failed at start-up: %s", error)
        except OSError as exc:
            log.warning("Slack not reachable at start-up: %s", type(exc).__name__)

    async def start(self) -> None:
        """Open the first link in the background (HTTP health and workers do not wait for
        Slack); slack_sdk keeps one open from then on (reconnects, refreshes)."""
        handler = AsyncSocketModeHandler(
            self._app,
            self._app_token,
            logger=logging.getLogger("slack_sdk.socket_mode"),
            web_client=self._client,
            ping_interval=PING_INTERVAL_SECONDS,
        )
        # Our listener instead of Bolt's: the same dispatch and ack, counted and timed like
        # a request to /slack/events.
        handler.client.socket_mode_request_listeners[:] = [self._handle]
        self._handler = handler
        self._connecting = asyncio.create_task(
            handler.connect_async(),  # type: ignore[no-untyped-call]
            name="switchboard-socket-mode",
        )

    async def stop(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connecting
            self._connecting = None
        if self._handler is not None:
            await self._handler.close_async()  # type: ignore[no-untyped-call]
            self._handler = None

    async def _handle(self, client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        started = time.perf_counter()
        about = describe_envelope(request)
        status = 500
        ids = {"team_id": about.team_id, "channel_id": about.channel_id}
        with log_context(trigger=about.trigger, user_id=about.user_id, **ids):
            try:
                response = await run_async_bolt_app(self._app, request)
                status = response.status
                await send_async_response(client, request, response, started)
            finally:
                elapsed = time.perf_counter() - started
                self._metrics.request_received(about.trigger, status, elapsed)
                log.debug("answered", extra={"status": status, "ms": round(elapsed * 1000, 1)})


def describe_envelope(request: SocketModeRequest) -> SlackRequest:
    """Metric labels and log ids of an envelope, named as over HTTP (``command``, …)."""
    payload: dict[str, Any] = request.payload if isinstance(request.payload, dict) else {}
    if request.type == "slash_commands":
        return describe_slack_payload("command", payload)
    if request.type == "events_api":
        return describe_slack_payload("event_callback", payload)
    return describe_slack_payload(str(payload.get("type")), payload)


def socket_mode_ingress(
    settings: Settings, app: AsyncApp, client: AsyncWebClient, metrics: Metrics
) -> SocketModeIngress | None:
    """The Socket Mode ingress when ``SLACK_APP_TOKEN`` is set, else None (HTTP only)."""
    token = settings.slack_app_token.get_secret_value()
    return SocketModeIngress(app, token, client, metrics) if token else None
