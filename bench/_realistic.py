"""The realistic mode of engine_throughput.py: Slack, a business API and real worker processes.

In the bench's own process: the Slack emulator (``sandbox.slack.SlackEmulator``,
no emulated rate limits) and ``Ledger``, a stand-in business API, each served by
uvicorn on a free loopback port. The workers are the real ``switchboard worker``
command, configured only through the environment (as an operator would), so
they are built by the product's composition root (``bot.runtime.build_runtime``:
``SlackChat`` over the Web API client, the connector registry from
``connections.yaml``, the engine, the ``Worker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
import yaml
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.slack import ChannelSeed, SlackEmulator, WorkspaceSeed
from workflows.language.workflow import Workflow
from workflows.store import Store
from workflows.tables import JobRow, RunRow

BOT_TOKEN = "xoxb-bench-0000-bot-token"
SIGNING_SECRET = "bench-signing-secret-5c1e"
SWITCHBOARD = Path(sys.executable).parent / "switchboard"
HTTP_STEP = "book"
WORKFLOW_YAML = """\
name: realistic
title: Throughput bench
channel: "#general"
thread: full  # a note per step, as the recorded figures were taken
steps:
  - id: announce
    post: {text: "order {{ input.text }} received"}
  - id: book
    http:
      connection: ledger
      method: POST
      path: /effects
      json: {order: "{{ input.text }}", run: "{{ run.id }}"}
  - id: done
    post: {text: "order {{ input.text }} booked as {{ steps.book.data.id }}"}
"""
WORKFLOW = Workflow.model_validate(yaml.safe_load(WORKFLOW_YAML))
POSTS_PER_RUN = 6
"""Root message, the two ``post`` steps' messages, one result note per step (none is quiet)."""


class Ledger:
    """``POST /effects`` -> 201 JSON after ``delay`` seconds; counts deliveries per key."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.deliveries: Counter[str] = Counter()
        self._ids = itertools.count(1)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/effects", self._effects, methods=["POST"])])

    async def _effects(self, request: Request) -> Response:
        key = request.headers.get("idempotency-key")
        if not key:
            return JSONResponse({"error": "Idempotency-Key required"}, status_code=400)
        body = await request.json()
        self.deliveries[key] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return JSONResponse({"id": f"fx-{next(self._ids)}", "order": body.get("order")}, 201)


class _Server(uvicorn.Server):
    """A server that leaves signals alone: on Ctrl-C the bench stops its workers first,
    while Slack and the API still answer, then the servers (uvicorn's own handlers would
    stop the servers at once, under the workers' feet)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in this process; yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Stage:
    """What the workers talk to, and the folder they load the workflow from."""

    slack: SlackEmulator
    ledger: Ledger
    folder: Path
    channels: tuple[str, ...]
    """Channel ids the runs are spread over (chat posting is paced per channel)."""


def workspace(channels: int) -> WorkspaceSeed:
    demo = WorkspaceSeed.demo()
    extra = [ChannelSeed(name=f"bench-{i:02d}") for i in range(channels)]
    return demo.model_copy(update={"channels": [*demo.channels, *extra]})


@contextlib.asynccontextmanager
async def stage(api_delay: float, channels: int) -> AsyncIterator[Stage]:
    slack = SlackEmulator(SIGNING_SECRET, BOT_TOKEN, workspace(channels), rate_limits=None)
    ledger = Ledger(api_delay)
    with tempfile.TemporaryDirectory(prefix="sb-bench-wf-") as tmp:
        folder = Path(tmp)
        async with serve(slack.asgi_app) as slack_url, serve(ledger.app) as ledger_url:
            slack.base_url = slack_url
            (folder / "realistic.yaml").write_text(WORKFLOW_YAML)
            (folder / "connections.yaml").write_text(
                f"connections:\n  ledger:\n    type: http\n    base_url: {ledger_url}\n"
            )
            ids = tuple(slack.channel_id(f"bench-{i:02d}") for i in range(channels))
            try:
                yield Stage(slack, ledger, folder, ids)
            finally:
                await slack.aclose()


# --------------------------------------------------------------------------- worker processes


def worker_env(stage: Stage, url: str, schema: str | None, poll: float) -> dict[str, str]:
    """The environment of ``switchboard worker``; nothing inherited configures Switchboard."""
    prefixes = ("SWITCHBOARD_", "SLACK_", "OPENAI_", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env |= {
        "DATABASE_URL": url,
        "SLACK_API_URL": stage.slack.api_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SWITCHBOARD_WORKFLOWS": str(stage.folder),
        "SWITCHBOARD_POLL_SECONDS": str(poll),
        # Per-channel pacing (burst 5, then ~1 post/s: Slack's guidance) is by design; a bench
        # of the engine sets it out of the way instead of measuring it.
        "SWITCHBOARD_SLACK_POST_BURST": "100000",
        "SWITCHBOARD_SLACK_POSTS_PER_S": "100000",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
    }
    if schema:
        env["SWITCHBOARD_DB_SCHEMA"] = schema
    return env


class Workers:
    """``switchboard worker`` processes; logs in the stage folder."""

    def __init__(self, stage: Stage, env: dict[str, str], concurrency: int) -> None:
        self.stage = stage
        self.env = env
        self.concurrency = concurrency
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, count: int) -> None:
        for i in range(count):
            with (self.stage.folder / f"worker-{i}.log").open("wb") as log:
                proc = await asyncio.create_subprocess_exec(
                    str(SWITCHBOARD),
                    "worker",
                    "--concurrency",
                    str(self.concurrency),
                    env=self.env,
                    cwd=self.stage.folder,  # no stray .env file is read
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                )
            self.procs.append(proc)

    async def wait_ready(self, within: float = 60) -> None:
        """Until every worker has called ``auth.test`` (its start-up's first Slack call)."""
        deadline = asyncio.get_running_loop().time() + within
        while len(self.stage.slack.api_calls("auth.test")) < len(self.procs):
            if any(p.returncode is not None for p in self.procs):
                raise SystemExit("a worker exited during start-up")
            if asyncio.get_running_loop().time() > deadline:
                raise SystemExit(f"workers not ready after {within}s")
            await asyncio.sleep(0.05)

    async def stop(self, grace: float = 30) -> None:
        """SIGTERM (a graceful stop); SIGKILL what is still running after ``grace`` seconds."""
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    def cpu_seconds(self) -> float:
        """User + system CPU of the live workers so far (Linux ``/proc``; 0 elsewhere)."""
        return sum(_cpu_seconds(p.pid) for p in self.procs if p.returncode is None)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.stage.folder.glob("worker-*.log"))
        )


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


# --------------------------------------------------------------------------- correctness


async def check(store: Store, stage: Stage) -> tuple[bool, str]:
    """Every run finished and none failed; one API effect per executed ``book`` step."""
    async with store.read() as session:
        statuses = Counter((await session.scalars(select(RunRow.status))).all())
        booked = set(
            (
                await session.scalars(
                    select(JobRow.run_id).where(
                        JobRow.step_id == HTTP_STEP, JobRow.status == "done"
                    )
                )
            ).all()
        )
    deliveries = stage.ledger.deliveries
    expected = {f"{run_id}:{HTTP_STEP}" for run_id in booked}
    posts = stage.slack.api_calls("chat.postMessage")
    refused = sum(1 for call in posts if not call.ok)
    ok = (
        set(statuses) <= {"succeeded", "cancelled"} and set(deliveries) == expected and refused == 0
    )
    succeeded = statuses.get("succeeded", 0)
    line = (
        f"check {'ok' if ok else 'FAILED'}: runs {dict(statuses)} (cancelled = cut off by the "
        f"time cap); API: {len(deliveries)} distinct Idempotency-Keys for {len(booked)} "
        f"executed http steps, {sum(deliveries.values())} deliveries; Slack: {len(posts)} "
        f"chat.postMessage ({refused} refused; {POSTS_PER_RUN} x {succeeded} succeeded runs "
        f"= {POSTS_PER_RUN * succeeded})"
    )
    return ok, line
