"""Helpers for the sandbox page's tests: the real demo (emulator + page + bot on one
port) on loopback, and small readers of ``/sandbox/state``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from sandbox.demo import Demo, demo_settings
from sandbox.slack import SlackEmulator
from tests.support.servers import free_port, serve_asgi

JSON = dict[str, Any]


@dataclass
class RunningDemo:
    demo: Demo
    url: str
    http: httpx.AsyncClient

    @property
    def slack(self) -> SlackEmulator:
        return self.demo.emulator

    async def state(self, user: str) -> JSON:
        response = await self.http.get("/sandbox/state", params={"user": user})
        response.raise_for_status()
        body: JSON = response.json()
        return body

    async def act(self, action: str, **body: Any) -> JSON:
        response = await self.http.post(f"/sandbox/act/{action}", json=body)
        result: JSON = response.json()
        result["http_status"] = response.status_code
        return result

    async def wait_state(
        self, user: str, found: Callable[[JSON], Any], timeout: float = 10, what: str = ""
    ) -> Any:
        async def probe() -> Any:
            return found(await self.state(user))

        return await self.slack.wait_for(
            probe, timeout=timeout, interval=0.05, message=f"state never showed {what}"
        )


def channel_messages(state: JSON, name: str) -> list[JSON]:
    channel = next(c for c in state["channels"] if c["name"] == name)
    messages: list[JSON] = state["messages"].get(channel["id"], [])
    return messages


def thread_replies(messages: list[JSON], root_ts: str) -> list[JSON]:
    return [m for m in messages if m.get("thread_ts") == root_ts and m["ts"] != root_ts]


@contextlib.asynccontextmanager
async def running_demo(tmp_path: Path, workflows: Path | None = None) -> AsyncIterator[RunningDemo]:
    """``switchboard demo`` as the CLI builds it, on a free port and a fresh SQLite file
    (``workflows``: ``--workflows DIR``; default the bundled examples)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = demo_settings(
        base,
        tmp_path / "demo.db",
        workflows,
        SWITCHBOARD_POLL_SECONDS=0.05,
        SWITCHBOARD_SLACK_POST_BURST=50,
        SWITCHBOARD_SLACK_POSTS_PER_S=50,
    )
    demo = Demo(settings, base)
    await demo.prepare_database()
    async with serve_asgi(demo.asgi, port=port) as url:
        try:
            await demo.start_bot()
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                yield RunningDemo(demo, url, http)
        finally:
            # End live streams first: the server waits for open responses before it stops.
            demo.page.close()
