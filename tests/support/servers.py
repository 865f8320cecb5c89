"""Real servers on loopback for tests: one way to run an ASGI app on a free port.

Tests talk to fakes at process boundaries over real HTTP (the Slack emulator, a
local OpenAI-compatible server, stand-in business APIs), so every fake is an
ASGI app served by uvicorn exactly as production serves the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PromptServer(uvicorn.Server):
    """uvicorn's server, doing each step of its stop as soon as it can.

    uvicorn looks at ``should_exit`` every 0.1 s, then sleeps a fixed 0.1 s after asking
    its connections to close and waits for them in 0.1 s steps: ~0.3 s per stopped
    server, paid by every test that starts the bot and the Slack emulator. The steps are
    the same (stop accepting, shut the connections, wait for them and for running tasks,
    lifespan shutdown); only the waits are short.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self.should_exit = True
        self._stop.set()

    async def main_loop(self) -> None:
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.1)  # uvicorn: sleep(0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await self._drained()
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()

    async def _drained(self) -> None:
        """Until every connection has closed and every request task ended (uvicorn: 0.1 s
        steps); the state is uvicorn's own sets, which signal nothing when they empty."""
        state = self.server_state
        while state.connections or state.tasks:  # noqa: ASYNC110
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 until the block exits; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False
    )
    server = PromptServer(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # re-raise the start-up error
                raise RuntimeError("server stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        await task
