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

import logging
import time
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import (
    run_async_bolt_app,
    send_async_response,
)
from slack_bolt.async_app import AsyncApp
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.logs import log_context
from bot.metrics import Metrics
from bot.settings import Settings
from bot.slack_ingress import SlackRequest, describe_slack_payload

log = logging.getLogger(__name__)

PING_INTERVAL_SECONDS = 10.0
"""slack_sdk's default: a link that misses four pings in a row is replaced."""


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

    async def start(self) -> None:
        """Open the first link; slack_sdk keeps one open from then on (reconnects, refreshes)."""
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
        await handler.connect_async()  # type: ignore[no-untyped-call]

    async def stop(self) -> None:
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
