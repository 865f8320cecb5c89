"""Fixtures for the sandbox tests: a served emulator, a slack_sdk client on it, and
a tiny signed-request receiver standing in for the bot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.slack import SlackEmulator, WorkspaceSeed
from tests.support.servers import serve_asgi

SECRET = "sandbox-signing-secret"
TOKEN = "xoxb-sandbox-token"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))

    @property
    def payload(self) -> dict[str, Any]:
        """The JSON of an interaction (payload=...) or an event body."""
        if self.headers.get("content-type", "").startswith("application/json"):
            return dict(json.loads(self.body))
        return dict(json.loads(self.form["payload"]))


@dataclass
class Receiver:
    """Records every request; answers with the scripted responses (then 200 "")."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    script: list[tuple[int, str, float, dict[str, str]]] = field(default_factory=list)

    def answer(self, status: int = 200, body: Any = "", delay: float = 0.0, **headers: str) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        self.script.append((status, text, delay, headers))

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        verifier = SignatureVerifier(SECRET)
        ok = verifier.is_valid_request(body, dict(request.headers))
        self.requests.append(Received(dict(request.headers), body, ok))
        status, text, delay, headers = self.script.pop(0) if self.script else (200, "", 0.0, {})
        if delay:
            await asyncio.sleep(delay)
        ctype = "application/json" if text.startswith("{") else "text/plain"
        return Response(text, status_code=status, media_type=ctype, headers=headers)


def make_emulator(**kwargs: Any) -> SlackEmulator:
    options: dict[str, Any] = {
        "ack_deadline": 1.0,
        "event_retry_delays": (0.05, 0.05, 0.05),
    }
    options.update(kwargs)
    return SlackEmulator(SECRET, TOKEN, WorkspaceSeed.demo(), **options)


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    emu = make_emulator()
    async with serve_asgi(emu.asgi_app) as url:
        emu.base_url = url
        yield emu
        await emu.aclose()


@pytest.fixture
async def client(emulator: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=emulator.api_url)


@pytest.fixture
async def receiver(emulator: SlackEmulator) -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = Starlette(routes=[Route("/slack/events", rec.handle, methods=["POST"])])
    async with serve_asgi(app) as url:
        rec.url = f"{url}/slack/events"
        emulator.request_url = rec.url
        yield rec
        await emulator.drain(timeout=2.0, cancel=True)
