"""``switchboard serve --no-worker`` replicas as real child processes on loopback ports.

Each replica is the command an operator runs behind a load balancer: the HTTP
ingress and the scheduler, no workers. Ready means ``/readyz`` answers 200
(database reachable and migrated, workflows loaded, ``auth.test`` done, scheduler
running).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from tests.support.servers import free_port

SWITCHBOARD = Path(sys.executable).parent / "switchboard"


class ServeReplicas:
    def __init__(self, env: Mapping[str, str], cwd: Path) -> None:
        self.env = dict(env)
        self.cwd = cwd
        self.urls: list[str] = []
        self.live: list[asyncio.subprocess.Process] = []

    async def start(self, count: int) -> list[str]:
        for _ in range(count):
            port = free_port()
            number = len(self.live) + 1
            log = (self.cwd / f"replica-{number}.log").open("wb")
            proc = await asyncio.create_subprocess_exec(
                str(SWITCHBOARD),
                "serve",
                "--no-worker",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
            log.close()
            self.live.append(proc)
            self.urls.append(f"http://127.0.0.1:{port}")
        return self.urls

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Until every replica's /readyz says 200 (start-up is seconds of imports)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=3) as http:
            for proc, url in zip(self.live, self.urls, strict=True):
                while not await _ready(http, url):
                    if proc.returncode is not None or time.monotonic() > deadline:
                        raise AssertionError(f"replica {url} not ready\n{self.logs()}")
                    await asyncio.sleep(0.1)

    async def stop(self, timeout: float = 10.0) -> list[int]:
        """SIGTERM (uvicorn's graceful shutdown) and wait; returns the exit codes."""
        for proc in self.live:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        codes = []
        for proc in self.live:
            try:
                codes.append(await asyncio.wait_for(proc.wait(), timeout))
            except TimeoutError:
                proc.kill()
                codes.append(await proc.wait())
        self.live = []
        return codes

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.cwd.glob("replica-*.log"))
        )


async def _ready(http: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await http.get(f"{url}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False
