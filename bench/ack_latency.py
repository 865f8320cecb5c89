"""Ack latency under open-loop load: ``switchboard serve`` vs two bare Bolt apps.

    python -m bench.ack_latency                     # all targets, 25..300 req/s, 20 s each
    python -m bench.ack_latency --rates 100 --duration 30 --targets switchboard-noworker
    python -m bench.ack_latency --profile --rates 100   # cProfile the ack path in-process

A fixed send schedule (request *i* leaves at ``t0 + i / rate``, whatever the
answers do) of signed Slack requests, exactly as Slack sends them: ``/flow hello``
slash commands (form bodies from ``sandbox/slack/payloads.py``) and, for a share
of them, ``approval:approve`` button clicks (``block_actions`` payloads; the gate
id is unknown, so the listener still does its one transaction and answers).
Latency is measured from the *scheduled* send time to the end of the answer, so a
server that falls behind is charged for the queue it builds (no coordinated
omission); the generator's own lag (actual - scheduled start) is reported beside it.

Targets, each a separate process on 127.0.0.1, each rate on a fresh server:

- ``switchboard``: ``switchboard serve`` as a user starts it (worker and scheduler
  inside, INFO logs as JSON to a file) on a fresh SQLite file (or ``--backend
  postgres``: a throw-away schema), ``SLACK_API_URL`` at a ``SlackEmulator`` served by
  another process (no emulated rate limits; the bot's own pacing lifted);
- ``switchboard-noworker``: ``serve --no-worker --no-scheduler``, WARNING logs;
- ``bolt-default`` / ``bolt-pbr``: a minimal ``AsyncApp`` whose listeners only
  ack, served by uvicorn through Bolt's Starlette adapter; Bolt's default
  configuration, and ``process_before_response=True`` (the reference);
- ``--before PATH``: the Switchboard targets again from another checkout's
  ``switchboard`` executable (``before:switchboard`` …), in the same run.

Each row also gives the server process's CPU time per answered request over the
measured phase (``/proc``): on a shared machine that figure moves far less than latency.

Verdict (issue 24), at 100 req/s against ``bolt-pbr`` in the same run: ``switchboard``
p50 <= 1.3x and p90 <= 1.5x, ``switchboard-noworker`` p50 <= 1.5x (the issue states it
on PostgreSQL), saturation (the highest offered rate with >= 95 % achieved, no errors,
nothing over 3 s and p99 < 100 ms) >= 0.8x the bare app's, nothing over 3 s; then, on
an idle system (``--visible N`` requests each, ``bench/_ack_visible.py``): request ->
root message visible p50 <= 50 ms, request -> first threaded step result (local
classifier) p50 <= 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from sandbox.slack import SlackEmulator, WorkspaceSeed, signed_headers
from sandbox.slack import payloads as slack_payloads

ROOT = Path(__file__).resolve().parent.parent
SIGNING_SECRET = "bench-signing-secret-3c1d"
BOT_TOKEN = "xoxb-bench-0000-bot-token"
SWITCHBOARD = Path(sys.executable).parent / "switchboard"
PG_URL = os.environ.get(
    "SWITCHBOARD_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
TARGETS = ("switchboard", "switchboard-noworker", "bolt-default", "bolt-pbr")
BEFORE: list[str] = []
"""``--before PATH``: a ``switchboard`` executable of another checkout, measured beside."""
SLOW_S = 3.0
HEALTHY_P99_MS = 100.0
"""Saturation = the highest offered rate still answered with p99 under this (issue 24)."""
REFERENCE = "bolt-pbr"
"""The floor every ratio is taken against: a bare Bolt AsyncApp, process_before_response."""


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_average() -> float:
    return os.getloadavg()[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_http(url: str, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {seconds:.0f}s")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def child(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    log = tempfile.NamedTemporaryFile(prefix="sb-ack-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield proc
    finally:
        stop_process(proc)
        log.close()
        tail = Path(log.name).read_text(errors="replace")[-2000:]
        if proc.returncode not in (0, -signal.SIGTERM) and tail.strip():
            print(f"--- {args[1:4]} exited {proc.returncode}:\n{tail}", file=sys.stderr)
        os.unlink(log.name)


# --------------------------------------------------------------------------- child roles


def serve_emulator(port: int) -> None:
    """The Slack Web API stand-in the bot's worker and auth.test talk to."""
    import uvicorn

    slack = SlackEmulator(
        SIGNING_SECRET,
        BOT_TOKEN,
        WorkspaceSeed.demo(),
        rate_limits=None,
        base_url=f"http://127.0.0.1:{port}",
    )
    uvicorn.run(slack.asgi_app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_bare(port: int, mode: str, api_url: str) -> None:
    """A minimal Bolt AsyncApp that only acks (Bolt default, or process_before_response)."""
    import uvicorn
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    app = AsyncApp(
        client=AsyncWebClient(token=BOT_TOKEN, base_url=api_url),
        signing_secret=SIGNING_SECRET,
        process_before_response=mode == "pbr",
    )

    async def ack_only(ack: Any) -> None:
        await ack()

    app.command("/flow")(ack_only)
    app.action(re.compile(r"^approval:"))(ack_only)
    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(_request: Request) -> Response:
        return Response("ok")

    api = Starlette(
        routes=[
            Route("/slack/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    uvicorn.run(api, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --------------------------------------------------------------------------- requests


class Requests:
    """Signed bodies exactly like Slack's, built from the sandbox's payload builders."""

    def __init__(self, emulator_url: str) -> None:
        self.slack = SlackEmulator(SIGNING_SECRET, BOT_TOKEN, WorkspaceSeed.demo())
        self.ws = self.slack.workspace
        self.url = emulator_url
        self.users = [self.slack.user(name) for name in ("alice", "bob", "carol", "dave")]
        self.channel = self.slack.channel("general")
        self.n = 0

    def command(self) -> tuple[bytes, dict[str, str]]:
        self.n += 1
        user = self.users[self.n % len(self.users)]
        form = slack_payloads.slash_command_form(
            self.ws,
            user,
            self.channel,
            "/flow",
            f"hello load test {self.n}",
            f"{self.url}/response/R{self.n:08d}",
            f"{int(time.time())}.{self.ws.team_id}.{uuid.uuid4().hex}",
        )
        return self._signed(urllib.parse.urlencode(form).encode())

    def click(self) -> tuple[bytes, dict[str, str]]:
        self.n += 1
        user = self.users[self.n % len(self.users)]
        action = {
            "type": "button",
            "action_id": "approval:approve",
            "block_id": "decide",
            "value": f"gate-unknown-{self.n}",
            "action_ts": f"{time.time():.6f}",
            "text": {"type": "plain_text", "text": "Approve"},
        }
        payload = slack_payloads.block_actions(
            self.ws,
            user,
            [action],
            f"{int(time.time())}.{self.ws.team_id}.{uuid.uuid4().hex}",
            channel=self.channel,
            message={"type": "message", "ts": "1700000000.000100", "text": "card", "blocks": []},
            message_ts="1700000000.000100",
            response_url=f"{self.url}/response/R{self.n:08d}",
        )
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return self._signed(body)

    def _signed(self, body: bytes) -> tuple[bytes, dict[str, str]]:
        headers = signed_headers(SIGNING_SECRET, body)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return body, headers


# --------------------------------------------------------------------------- load


@dataclass
class RateResult:
    target: str
    offered: float
    sent: int = 0
    ok: int = 0
    errors: int = 0
    slow: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    load: float = 0.0
    error_kinds: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0
    """CPU time the server process spent during the measured phase."""

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_s * 1000 / self.ok if self.ok else float("nan")

    @property
    def achieved(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000

    @property
    def healthy(self) -> bool:
        return (
            self.achieved >= 0.95 * self.offered
            and self.errors == 0
            and self.slow == 0
            and self.pct(0.99) < HEALTHY_P99_MS
        )


async def open_loop(
    url: str, requests: Requests, rate: float, seconds: float, click_share: float, target: str
) -> RateResult:
    """Send on a fixed schedule; never wait for an answer before sending the next request."""
    result = RateResult(target, rate)
    total = max(1, int(rate * seconds))
    rng = random.Random(1)
    bodies = [
        requests.click() if rng.random() < click_share else requests.command() for _ in range(total)
    ]
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int, scheduled: float) -> None:
            body, headers = bodies[i]
            # Re-sign now: a queued request must not fail on a stale timestamp.
            headers = {**headers, **signed_headers(SIGNING_SECRET, body)}
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            result.lags.append(time.perf_counter() - scheduled)
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                kind = type(exc).__name__
                result.errors += 1
                result.error_kinds[kind] = result.error_kinds.get(kind, 0) + 1
                return
            elapsed = time.perf_counter() - scheduled
            if status != 200:
                result.errors += 1
                result.error_kinds[str(status)] = result.error_kinds.get(str(status), 0) + 1
                return
            result.ok += 1
            result.latencies.append(elapsed)
            if elapsed > SLOW_S:
                result.slow += 1

        start = time.perf_counter() + 0.2
        tasks = []
        for i in range(total):
            scheduled = start + i / rate
            # Create tasks just ahead of their time (bounded memory, steady schedule).
            ahead = scheduled - time.perf_counter() - 0.05
            if ahead > 0:
                await asyncio.sleep(ahead)
            tasks.append(asyncio.create_task(one(i, scheduled)))
        result.sent = total
        await asyncio.gather(*tasks)
        result.seconds = max(time.perf_counter() - start, total / rate)
    result.load = load_average()
    return result


# --------------------------------------------------------------------------- targets


@contextlib.asynccontextmanager
async def database(backend: str) -> AsyncIterator[tuple[str, str | None]]:
    from workflows import migrate
    from workflows.store import Store

    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="sb-ack-") as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/switchboard.db"
            store = Store(url)
            await migrate.upgrade(store)
            await store.dispose()
            yield url, None
        return
    import asyncpg

    schema = f"ack_{uuid.uuid4().hex[:10]}"
    raw = PG_URL.replace("+asyncpg", "")
    conn = await asyncpg.connect(raw)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        store = Store(PG_URL, schema=schema)
        await migrate.upgrade(store)
        await store.dispose()
        yield PG_URL, schema
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@contextlib.asynccontextmanager
async def target_server(
    target: str, api_url: str, backend: str
) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if target.startswith("bolt-"):
        mode = target.removeprefix("bolt-")
        command = [sys.executable, "-m", "bench.ack_latency", "--role", "bare", "--mode", mode]
        command += ["--port", str(port), "--api-url", api_url]
        with child(command) as proc:
            await wait_http(f"{base}/healthz")
            yield f"{base}/slack/events", proc
        return
    async with database(backend) as (url, schema):
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "SLACK_API_URL": api_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
            "SWITCHBOARD_POLL_SECONDS": "0.05",
            "SWITCHBOARD_SLACK_POST_BURST": "1000",
            "SWITCHBOARD_SLACK_POSTS_PER_S": "1000",
        }
        if schema:
            env["SWITCHBOARD_DB_SCHEMA"] = schema
        # ``before:switchboard``: the same target from another checkout (``--before``).
        exe = BEFORE[0] if target.startswith("before:") else str(SWITCHBOARD)
        target = target.removeprefix("before:")
        command = [exe, "serve", "--host", "127.0.0.1", "--port", str(port)]
        if target == "switchboard":
            # As a user starts it: worker and scheduler inside, INFO logs (JSON, to a file).
            del env["SWITCHBOARD_LOG_LEVEL"], env["SWITCHBOARD_POLL_SECONDS"]
        else:
            command += ["--no-scheduler", "--no-worker"]
        with child(command, env) as proc:
            await wait_http(f"{base}/healthz")
            yield f"{base}/slack/events", proc


async def run_target(
    target: str, rates: list[float], args: argparse.Namespace, api_url: str, emulator_url: str
) -> list[RateResult]:
    results: list[RateResult] = []
    requests = Requests(emulator_url)
    for rate in rates:
        async with target_server(target, api_url, args.backend) as (url, proc):
            # Warm-up (not counted): imports, pools, the first connections.
            await open_loop(url, requests, 20, args.warmup, args.click_share, target)
            cpu = cpu_seconds(proc.pid)
            result = await open_loop(url, requests, rate, args.duration, args.click_share, target)
            result.cpu_s = cpu_seconds(proc.pid) - cpu
        results.append(result)
        print(row(result), flush=True)
        collapsed = result.achieved < 0.5 * rate and result.errors > result.sent // 2
        if collapsed and rate != rates[-1]:
            print(f"  {target}: collapsed at {rate:g} req/s, higher rates skipped", flush=True)
            break
    return results


HEADER = (
    "| target | offered req/s | achieved req/s | p50 ms | p90 ms | p99 ms | max ms | errors "
    "| > 3 s | server CPU ms/req | generator lag p99 ms | load 1m |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def row(r: RateResult) -> str:
    errors = str(r.errors) + (f" {r.error_kinds}" if r.error_kinds else "")
    return (
        f"| {r.target} | {r.offered:g} | {r.achieved:.1f} | {r.pct(0.5):.1f} | {r.pct(0.9):.1f} "
        f"| {r.pct(0.99):.1f} | {max(r.latencies, default=float('nan')) * 1000:.0f} | {errors} "
        f"| {r.slow} | {r.cpu_ms_per_request:.2f} | {percentile(r.lags, 0.99) * 1000:.1f} "
        f"| {r.load:.2f} |"
    )


def saturation(results: list[RateResult]) -> float:
    best = 0.0
    for r in results:
        if not r.healthy:
            break
        best = r.offered
    return best


async def measure(args: argparse.Namespace) -> int:
    rates = [float(r) for r in args.rates.split(",")]
    targets = args.targets.split(",")
    if args.before:
        BEFORE.append(args.before)
        targets = [f"before:{t}" for t in targets if t.startswith("switchboard")] + targets
    port = free_port()
    emulator_url = f"http://127.0.0.1:{port}"
    print(
        f"python={platform.python_version()} cpus={os.cpu_count()} backend={args.backend} "
        f"duration={args.duration}s click_share={args.click_share} load_1m={load_average():.2f}",
        flush=True,
    )
    print(HEADER, flush=True)
    all_results: dict[str, list[RateResult]] = {}
    with child(
        [sys.executable, "-m", "bench.ack_latency", "--role", "emulator", "--port", str(port)]
    ):
        await wait_http(f"{emulator_url}/api/api.test", 60)
        for target in targets:
            all_results[target] = await run_target(
                target, rates, args, f"{emulator_url}/api/", emulator_url
            )
    print(f"\nsaturation (highest offered rate with p99 < {HEALTHY_P99_MS:g} ms):")
    for target, results in all_results.items():
        print(f"  {target}: {saturation(results):g} req/s")
    problems: list[str] = []
    if args.visible:
        from bench import _ack_visible

        print(f"\nidle system, one request at a time ({args.visible} each), serve as started:")
        visible = await _ack_visible.measure_visible(
            sys.modules[__name__], args.visible, args.backend
        )
        problems = _ack_visible.report(visible)
    return verdict(all_results, problems)


RATIO_LIMITS = {"switchboard": {0.5: 1.3, 0.9: 1.5}, "switchboard-noworker": {0.5: 1.5}}
"""Issue 24's ack targets at 100 req/s, as multiples of the bare app's figure in the same run
(``switchboard-noworker``'s is stated for PostgreSQL: run it with ``--backend postgres``)."""
SATURATION_SHARE = 0.8


def at_rate(results: list[RateResult], rate: float) -> RateResult | None:
    return next((r for r in results if r.offered == rate), None)


def verdict(all_results: dict[str, list[RateResult]], problems: list[str]) -> int:
    """Each Switchboard target against the bare ``process_before_response`` app."""
    ref = all_results.get(REFERENCE)
    ref100 = at_rate(ref, 100) if ref else None
    if ref is None or ref100 is None:
        print(f"VERDICT: n/a ({REFERENCE} at 100 req/s is the reference; it was not measured)")
        return 0
    for target, limits in RATIO_LIMITS.items():
        results = all_results.get(target)
        r100 = at_rate(results, 100) if results else None
        if results is None or r100 is None:
            continue
        for q, limit in limits.items():
            ratio = r100.pct(q) / ref100.pct(q)
            name = f"p{round(q * 100)}"
            print(
                f"  {target} {name} at 100 req/s: {r100.pct(q):.1f} ms = {ratio:.2f}x "
                f"{REFERENCE} ({ref100.pct(q):.1f} ms), limit {limit}x"
            )
            if ratio > limit:
                problems.append(f"{target} {name} {ratio:.2f}x > {limit}x")
        if len(results) > 1 or len(ref) > 1:
            sat, ref_sat = saturation(results), saturation(ref)
            print(f"  {target} saturation {sat:g} req/s vs {REFERENCE} {ref_sat:g} req/s")
            if sat < SATURATION_SHARE * ref_sat:
                problems.append(f"{target} saturation {sat:g} < {SATURATION_SHARE} x {ref_sat:g}")
        slow = sum(r.slow for r in results)
        if slow:
            problems.append(f"{target}: {slow} answers over {SLOW_S:g} s")
    if problems:
        print("VERDICT: FAIL: " + "; ".join(problems))
        return 1
    print("VERDICT: PASS (every ratio within its limit, nothing over 3 s)")
    return 0


# --------------------------------------------------------------------------- profile


async def profile(args: argparse.Namespace) -> None:
    """The ack path in this process under cProfile: the real app, an in-process emulator."""
    import cProfile
    import pstats

    import httpx

    from bot.runtime import build_runtime
    from bot.server import create_asgi
    from bot.settings import load_settings
    from tests.support.servers import serve_asgi

    slack = SlackEmulator(SIGNING_SECRET, BOT_TOKEN, WorkspaceSeed.demo(), rate_limits=None)
    rate = float(args.rates.split(",")[0])
    async with database(args.backend) as (url, schema), serve_asgi(slack.asgi_app) as slack_url:
        slack.base_url = slack_url
        overrides: dict[str, Any] = {
            "SLACK_API_URL": slack.api_url,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "DATABASE_URL": url,
            "SWITCHBOARD_DB_SCHEMA": schema,
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
        }
        runtime = build_runtime(load_settings(**overrides), run_workers=0)
        async with serve_asgi(create_asgi(runtime)) as bot_url:
            async with httpx.AsyncClient() as client:
                (await client.get(f"{bot_url}/healthz")).raise_for_status()
            requests = Requests(slack_url)
            events = f"{bot_url}/slack/events"
            await open_loop(events, requests, 20, 1.0, args.click_share, "warm-up")
            profiler = cProfile.Profile()
            profiler.enable()
            result = await open_loop(
                events, requests, rate, args.duration, args.click_share, "profiled"
            )
            profiler.disable()
    print(HEADER)
    print(row(result))
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(45)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="25,50,100,200,300", help="req/s, comma-separated")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per rate")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds at 20 req/s first")
    parser.add_argument("--targets", default=",".join(TARGETS), help=",".join(TARGETS))
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--click-share", type=float, default=0.2, help="share of button clicks")
    parser.add_argument("--profile", action="store_true", help="cProfile the ack path")
    parser.add_argument(
        "--visible",
        type=int,
        default=20,
        help="requests timed to the root message / first step result, idle (0: skip)",
    )
    parser.add_argument(
        "--before",
        help="a switchboard executable of another checkout (e.g. main's .venv/bin/switchboard): "
        "its serve is measured beside this one's, as before:<target>",
    )
    parser.add_argument("--role", choices=["emulator", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "emulator":
        serve_emulator(args.port)
        return
    if args.role == "bare":
        serve_bare(args.port, args.mode, args.api_url)
        return
    if args.profile:
        asyncio.run(profile(args))
        return
    sys.exit(asyncio.run(measure(args)))


if __name__ == "__main__":
    main()
