"""What the engine proofs share: a stand-in business service and `switchboard worker` processes.

The stand-in behaves like a real payment/ledger API: the first request with an
``Idempotency-Key`` applies its effect and stores the response; a repeat with
the same key gets the stored response back and changes nothing. It also counts
raw deliveries, so a test can report how often the engine re-sent a request.

``WorkerProcesses`` runs the real command line (``switchboard worker``) as
child processes, so a SIGKILL is exactly what an operator's OOM-killer or a
pulled plug does: no ``finally`` blocks, no graceful shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SWITCHBOARD = Path(sys.executable).parent / "switchboard"


class IdempotentService:
    """``POST /effects``: applies each Idempotency-Key's effect once; counts every delivery."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.deliveries: Counter[str] = Counter()
        self.applied: dict[str, dict[str, Any]] = {}
        self.on_delivery: Callable[[str], None] | None = None
        self._ids = itertools.count(1)

    @property
    def asgi_app(self) -> Starlette:
        return Starlette(routes=[Route("/effects", self._effects, methods=["POST"])])

    async def _effects(self, request: Request) -> Response:
        key = request.headers.get("idempotency-key")
        if not key:
            return JSONResponse({"error": "Idempotency-Key required"}, status_code=400)
        body = await request.json()
        self.deliveries[key] += 1
        if key not in self.applied:
            self.applied[key] = {"id": f"fx-{next(self._ids)}", "key": key, "body": body}
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.on_delivery is not None:
            self.on_delivery(key)  # e.g. kill the caller after the effect, before the answer
        return JSONResponse(self.applied[key], status_code=201)

    @property
    def raw_deliveries(self) -> int:
        return sum(self.deliveries.values())


class WorkerProcesses:
    """``switchboard worker`` child processes that can be killed with SIGKILL and restarted."""

    def __init__(self, env: Mapping[str, str], cwd: Path, concurrency: int = 4) -> None:
        self.env = dict(env)
        self.cwd = cwd
        self.concurrency = concurrency
        self.live: list[asyncio.subprocess.Process] = []
        self.started = 0
        self.killed = 0
        self._killed_pids: set[int] = set()

    async def start(self, count: int = 1) -> None:
        for _ in range(count):
            self.started += 1
            log = (self.cwd / f"worker-{self.started}.log").open("wb")
            proc = await asyncio.create_subprocess_exec(
                str(SWITCHBOARD),
                "worker",
                "--concurrency",
                str(self.concurrency),
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
            log.close()
            self.live.append(proc)

    def kill(self, proc: asyncio.subprocess.Process) -> None:
        """SIGKILL: the process gets no chance to finish or release anything."""
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
                self.killed += 1
                self._killed_pids.add(proc.pid)

    def kill_all(self) -> None:
        for proc in self.live:
            self.kill(proc)

    async def reap(self) -> None:
        """Collect the killed processes; keep the live ones."""
        for proc in self.live:
            if proc.returncode is None and self._signalled(proc):
                await proc.wait()
        self.live = [p for p in self.live if p.returncode is None]

    def _signalled(self, proc: asyncio.subprocess.Process) -> bool:
        return proc.pid in self._killed_pids

    async def stop(self, timeout: float = 10.0) -> list[int]:
        """SIGTERM (a graceful stop) and wait; returns the exit codes."""
        codes = []
        for proc in self.live:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
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
            for path in sorted(self.cwd.glob("worker-*.log"))
        )
