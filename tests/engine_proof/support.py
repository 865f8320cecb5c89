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
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.slack import ApiCall, SlackEmulator

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


# The crash-test workflow and its ledger connection (bench/resilience_*.py run it too).
STEPS = ["announce", "book", "calc", "done"]
PURPOSES = ["_run/root", *(f"{step}/result" for step in STEPS), "announce/post", "done/post"]
WORKFLOW = """\
name: crashy
title: Crash test
channel: "#general"
thread: full  # every step's note is counted (PURPOSES); compact cards go out in the background
steps:
  - id: announce
    post: {text: "order {{ input.text }} received"}
  - id: book
    http:
      connection: ledger
      method: POST
      path: /effects
      json: {order: "{{ input.text }}", run: "{{ run.id }}"}
  - id: calc
    set: {booked: "{{ steps.book.data.id }}"}
  - id: done
    post: {text: "order {{ input.text }} booked as {{ steps.calc.booked }}"}
"""


def connections(service_url: str) -> str:
    return (
        f"connections:\n  ledger:\n    type: http\n    base_url: {service_url}\n    timeout_s: 5\n"
    )


async def start_workers_and_wait_ready(workers: WorkerProcesses, slack: SlackEmulator) -> None:
    """Top up to two workers; return once each new one has reached Slack (start-up is done).

    Start-up is seconds of imports, longer on a loaded machine; kills are timed from here
    so that they land in the work, not in the imports.
    """
    new = 2 - len(workers.live)
    before = len(slack.api_calls("auth.test"))
    await workers.start(new)
    deadline = time.monotonic() + 60
    while len(slack.api_calls("auth.test")) < before + new:
        assert time.monotonic() < deadline, f"workers did not start\n{workers.logs()}"
        await asyncio.sleep(0.05)


async def kill_at_some_point(
    rng: random.Random, workers: WorkerProcesses, service: IdempotentService, slack: SlackEmulator
) -> str:
    """Kill right after an effect, right after a Slack post, or at a random moment."""
    how = rng.choice(["after-effect", "after-post", "random-moment"])
    fired = asyncio.Event()
    countdown = rng.randint(1, 4)

    def maybe_kill() -> None:
        nonlocal countdown
        countdown -= 1
        if countdown == 0 and not fired.is_set():
            workers.kill_all()  # synchronously: before the worker gets its answer
            fired.set()

    def on_post(call: ApiCall) -> None:
        if call.method == "chat.postMessage" and call.ok:
            maybe_kill()

    if how == "after-effect":
        service.on_delivery = lambda _key: maybe_kill()
    elif how == "after-post":
        slack.on_api_call(on_post)
    try:
        if how == "random-moment":
            # The workers have just started up; the work takes a few seconds.
            await asyncio.sleep(rng.uniform(0.1, 2.0))
            victims = rng.sample(workers.live, rng.randint(1, len(workers.live)))
            for proc in victims:
                workers.kill(proc)
            return f"{how}({len(victims)})"
        try:
            await asyncio.wait_for(fired.wait(), timeout=8)
        except TimeoutError:
            workers.kill_all()
            return f"{how}(timeout)"
        return how
    finally:
        service.on_delivery = None
        slack.on_api_call(None)


def message_key(message: dict[str, object]) -> str | None:
    metadata = message.get("metadata")
    if not isinstance(metadata, dict):
        return None
    payload = metadata.get("event_payload")
    return str(payload.get("key")) if isinstance(payload, dict) else None
