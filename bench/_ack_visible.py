"""What a person sees after the ack, one request at a time on an idle system (issue 24).

- *root visible*: a signed ``/flow hello …`` posted to ``switchboard serve`` (worker
  inside, as started by default) -> the run's root message is in the channel;
- *first step result*: ``/flow sort …`` whose first step classifies the text with the
  bundled local model -> the label is in the run's thread (a step note or the run card,
  a new reply or an edited one: whichever the thread design posts first).

The Slack emulator runs in this process (no rate limits) and is polled every 2 ms; the
time is taken from just before the request is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp

from sandbox.slack import SlackEmulator, WorkspaceSeed
from sandbox.slack.seeds import ChannelSeed

ROOT = Path(__file__).resolve().parent.parent
SORT = """\
name: sort
title: Sort a request
triggers:
  - command: sort
steps:
  - id: kind
    classify:
      min_confidence: 0.1
      labels:
        billing: {examples: ["refund my invoice", "I was charged twice", "update my card"]}
        outage: {examples: ["the app crashes", "the dashboard is down", "cannot log in"]}
  - id: done
    set: {label: "{{ steps.kind.label }}"}
"""
HELLO = (ROOT / "workflows" / "examples" / "hello.yaml").read_text()
LIMITS_MS = {"root visible": 50.0, "first step result": 150.0}


async def measure_visible(bench: Any, samples: int, backend: str) -> dict[str, list[float]]:
    """p50-able latencies (ms) of both kinds; ``bench`` is ``bench.ack_latency`` (its rig)."""
    # As the load phases' emulator: no emulated rate limits. Each request gets a channel of
    # its own, so the bot's own per-channel pacing (5 posts, then 1/s) starts full: idle.
    seed = WorkspaceSeed.demo()
    channels = [f"visible-{i}" for i in range(2 * samples + 2)]
    seed.channels.extend(ChannelSeed(name=name) for name in channels)
    slack = SlackEmulator(bench.SIGNING_SECRET, bench.BOT_TOKEN, seed, rate_limits=None)
    from tests.support.servers import serve_asgi

    with tempfile.TemporaryDirectory(prefix="sb-visible-") as folder:
        (Path(folder) / "hello.yaml").write_text(HELLO)
        (Path(folder) / "sort.yaml").write_text(SORT)
        async with serve_asgi(slack.asgi_app) as slack_url, bench.database(backend) as db:
            slack.base_url = slack_url
            async with _serve(bench, slack.api_url, db, folder) as url:
                requests = bench.Requests(slack_url)
                requests.slack, requests.ws = slack, slack.workspace
                free = iter(channels)
                kinds = (("root visible", "hello", _root), ("first step result", "sort", _label))
                return {
                    name: await _each(samples, url, requests, free, command, found)
                    for name, command, found in kinds
                }


@contextlib.asynccontextmanager
async def _serve(bench: Any, api_url: str, db: tuple[str, str | None], folder: str) -> Any:
    url, schema = db
    port = bench.free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SLACK_API_URL": api_url,
        "SLACK_BOT_TOKEN": bench.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": bench.SIGNING_SECRET,
        "SWITCHBOARD_WORKFLOWS": folder,
    }
    if schema:
        env["SWITCHBOARD_DB_SCHEMA"] = schema
    command = [str(bench.SWITCHBOARD), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with bench.child(command, env):
        await bench.wait_http(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}/slack/events"


Found = Callable[[SlackEmulator, str], bool]


def _root(slack: SlackEmulator, channel: str) -> bool:
    return bool(slack.messages(channel))


def _label(slack: SlackEmulator, channel: str) -> bool:
    for root in slack.messages(channel):
        replies = slack.thread(channel, root["ts"])[1:]
        if any("billing" in str(m.get("text", "")) for m in replies):
            return True
    return False


async def _each(
    samples: int, url: str, requests: Any, channels: Iterator[str], command: str, found: Found
) -> list[float]:
    times: list[float] = []
    slack: SlackEmulator = requests.slack
    async with aiohttp.ClientSession() as session:
        for i in range(samples + 1):  # the first one warms the path up, not counted
            channel = next(channels)
            requests.channel = slack.channel(channel)
            body, _ = requests.command()
            body = body.replace(b"hello+load+test", f"{command}+refund+my+invoice+{i}".encode())
            _, headers = requests._signed(body)
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                assert response.status == 200, await response.text()
            while not found(slack, channel):
                if time.perf_counter() - started > 10:
                    raise SystemExit(f"{command}: nothing visible after 10 s")
                await asyncio.sleep(0.002)
            if i:
                times.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.5)  # idle between requests: the run's other steps finish
    return times


def report(results: dict[str, list[float]]) -> list[str]:
    """Lines for the output, and the problems (empty when both targets hold)."""
    problems = []
    for name, times in results.items():
        p50 = statistics.median(times)
        limit = LIMITS_MS[name]
        print(
            f"  request -> {name}: p50 {p50:.1f} ms, max {max(times):.1f} ms "
            f"({len(times)} requests), limit p50 <= {limit:g} ms",
            file=sys.stdout,
        )
        if p50 > limit:
            problems.append(f"{name} p50 {p50:.1f} ms > {limit:g} ms")
    return problems
