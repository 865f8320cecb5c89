"""A busy channel under Slack's limits: how soon people see their roots and full threads.

    python -m bench.thread_pacing                 # 20 /flow hello in #general within a second
    python -m bench.thread_pacing --runs 20 --invoices 3

The Slack emulator runs in its realistic rate mode (``sandbox/slack/web_api.py``
``RealisticLimiter``: ``chat.postMessage`` a burst of 5 then one a second per
channel, ``chat.update`` Tier 3 for the workspace) and the bot is built by the
product's composition root with its default settings (its own per-channel pacer,
the worker inside, SQLite), both served on loopback. ``--runs`` people type
``/flow hello N`` in one channel within a second; the bench then watches the
emulator's Web API log and the channel as people see it:

- last root visible: seconds from the first command to the last run's root message;
- every thread complete: seconds until every run's root shows its outcome, its run
  card shows every step and the outcome, and its own post is there;
- ``chat.postMessage`` per run (calls answered ok, carrying the run's outbox key), and
  the 429s Slack would have answered;
- invoice messages per run (``--invoices`` discrepancies approved by a finance lead,
  with the stand-ins of ``make demo``): every ``chat.postMessage`` of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from bot.runtime import Runtime, build_runtime
from bot.server import create_asgi
from bot.settings import BUNDLED_WORKFLOWS, load_settings
from sandbox.slack import SlackEmulator, WorkspaceSeed
from sandbox.slack.web_api import REALISTIC
from sandbox.standins import examples_seed, run_standins
from tests.support.servers import serve_asgi
from workflows import migrate
from workflows.store import Store
from workflows.tables import RunRow

SIGNING_SECRET = "bench-signing-secret-7d21"
BOT_TOKEN = "xoxb-bench-0000-pacing-token"
PEOPLE = ("alice", "bob", "carol")
TARGETS = {"last_root": 22.0, "threads": 40.0, "hello_posts": 3.0, "invoice_posts": 5.0}


@dataclass
class Stage:
    slack: SlackEmulator
    runtime: Runtime


@contextlib.asynccontextmanager
async def stage(
    seed: WorkspaceSeed, workflows: Path = BUNDLED_WORKFLOWS, concurrency: int | None = None
) -> AsyncIterator[Stage]:
    """The realistic emulator and the bot (worker inside) on a fresh SQLite file."""
    slack = SlackEmulator(SIGNING_SECRET, BOT_TOKEN, seed, rate_limits=REALISTIC)
    with tempfile.TemporaryDirectory(prefix="sb-pacing-") as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/switchboard.db"
        store = Store(url)
        await migrate.upgrade(store)
        await store.dispose()
        async with serve_asgi(slack.asgi_app) as slack_url:
            slack.base_url = slack_url
            settings = load_settings(
                SLACK_API_URL=slack.api_url,
                SLACK_SIGNING_SECRET=SIGNING_SECRET,
                SLACK_BOT_TOKEN=BOT_TOKEN,
                DATABASE_URL=url,
                SWITCHBOARD_WORKFLOWS=workflows,
                SWITCHBOARD_SCHEDULER=False,
                SWITCHBOARD_LOG_LEVEL="WARNING",
                **({"SWITCHBOARD_WORKER_CONCURRENCY": concurrency} if concurrency else {}),
            )
            runtime = build_runtime(settings, run_workers=1)
            try:
                async with serve_asgi(create_asgi(runtime)) as bot_url:
                    slack.request_url = f"{bot_url}/slack/events"
                    async with httpx.AsyncClient() as client:
                        (await client.get(f"{bot_url}/healthz")).raise_for_status()
                    yield Stage(slack, runtime)
            finally:
                await slack.aclose()


async def runs_of(runtime: Runtime, workflow: str) -> list[RunRow]:
    async with runtime.store.read() as session:
        return list(await session.scalars(select(RunRow).where(RunRow.workflow == workflow)))


def run_posts(slack: SlackEmulator, run_id: str) -> list[Any]:
    return [
        c
        for c in slack.api_calls("chat.postMessage")
        if c.ok and f"{run_id}/" in str(c.args.get("metadata", ""))
    ]


def status_of(message: dict[str, Any] | None) -> str:
    if message is None:
        return ""
    sections = [b for b in message.get("blocks", []) if b.get("type") == "section"]
    return next((str(b["text"]["text"]) for b in sections if b["text"]["text"].startswith(":")), "")


def card_done(slack: SlackEmulator, channel: str, run: RunRow) -> bool:
    replies = slack.thread(channel, run.root_ts) if run.root_ts else []
    return any(m["text"].startswith("Run card · Done") for m in replies)


def hello_complete(slack: SlackEmulator, channel: str, run: RunRow) -> bool:
    if not run.root_ts or not status_of(slack.message(channel, run.root_ts)).endswith("Done"):
        return False
    replies = slack.thread(channel, run.root_ts)[1:]
    cards = [m for m in replies if m["text"].startswith("Run card · Done")]
    return bool(cards) and "reply:" in cards[0]["text"] and len(replies) >= 2


async def hello_burst(runs: int, concurrency: int | None) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="sb-pacing-hello-"))
    (folder / "hello.yaml").write_text((BUNDLED_WORKFLOWS / "hello.yaml").read_text())
    async with stage(WorkspaceSeed.demo(), folder, concurrency) as s:
        slack, channel = s.slack, "general"
        started = time.monotonic()
        results = await asyncio.gather(
            *(
                slack.slash_command(PEOPLE[n % len(PEOPLE)], channel, f"hello number {n}")
                for n in range(runs)
            )
        )
        typed = time.monotonic() - started
        assert all(r.ok for r in results), [r.body for r in results if not r.ok]
        roots: dict[str, float] = {}
        complete: dict[str, float] = {}
        deadline = started + 180
        while len(complete) < runs and time.monotonic() < deadline:
            now = time.monotonic() - started
            for run in await runs_of(s.runtime, "hello"):
                if run.root_ts and run.id not in roots:
                    roots[run.id] = now
                if run.id not in complete and hello_complete(slack, channel, run):
                    complete[run.id] = now
            await asyncio.sleep(0.05)
        every = await runs_of(s.runtime, "hello")
        posts = [len(run_posts(slack, run.id)) for run in every]
        limited = [c for c in slack.api_calls() if c.status == 429]
        return {
            "runs": len(every),
            "typed_s": typed,
            "last_root_s": max(roots.values(), default=float("nan")),
            "median_root_s": statistics.median(roots.values()) if roots else float("nan"),
            "threads_complete_s": max(complete.values()) if len(complete) == runs else float("inf"),
            "posts_per_run": sum(posts) / max(1, len(posts)),
            "posts_total": sum(posts),
            "updates_total": len([c for c in slack.api_calls("chat.update") if c.ok]),
            "rate_limited": len(limited),
        }


async def invoices(count: int) -> float:
    """chat.postMessage per approved invoice (a discrepancy finance approves)."""
    with tempfile.TemporaryDirectory(prefix="sb-pacing-standins-") as tmp:
        async with run_standins(Path(tmp)) as standins:
            os.environ.update(standins.env)
            async with stage(examples_seed()) as s:
                slack = s.slack
                for n in range(count):
                    await slack.slash_command(
                        "alice", "ap-inbox", f"invoice ACME INV-{1042 + n} for 12,400 EUR, PO-7781"
                    )
                approved: set[str] = set()
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    for card in slack.messages("finance-approvals"):
                        if card["ts"] not in approved:
                            approved.add(card["ts"])
                            await slack.click(
                                "dana", card["ts"], "approval:approve", channel="finance-approvals"
                            )
                    runs = await runs_of(s.runtime, "invoice")
                    if len(runs) == count and all(r.status == "succeeded" for r in runs):
                        break
                    await asyncio.sleep(0.1)
                # The outcome and the card's final state go out after the last commit.
                await slack.wait_for(
                    lambda: all(card_done(slack, "ap-inbox", run) for run in runs), timeout=60
                )
                posts = [len(run_posts(slack, run.id)) for run in runs]
                return sum(posts) / max(1, len(posts))


def report(hello: dict[str, float], invoice: float | None) -> int:
    print(f"{hello['runs']:.0f} /flow hello in one channel, typed in {hello['typed_s']:.2f} s")
    rows = [
        ("last root visible (s)", hello["last_root_s"], TARGETS["last_root"]),
        ("every thread complete (s)", hello["threads_complete_s"], TARGETS["threads"]),
        ("chat.postMessage per hello run", hello["posts_per_run"], TARGETS["hello_posts"]),
    ]
    if invoice is not None:
        rows.append(("invoice messages per run (compact)", invoice, TARGETS["invoice_posts"]))
    print(f"{'figure':38} {'measured':>9} {'target':>7}")
    missed = 0
    for name, value, target in rows:
        ok = value <= target
        missed += not ok
        print(f"{name:38} {value:9.2f} {'<=':>3}{target:4.0f}  {'ok' if ok else 'MISSED'}")
    print(
        f"median root {hello['median_root_s']:.2f} s · {hello['posts_total']:.0f} posts, "
        f"{hello['updates_total']:.0f} updates, {hello['rate_limited']:.0f} answered 429"
    )
    return 1 if missed else 0


async def measure(args: argparse.Namespace) -> int:
    hello = await hello_burst(args.runs, args.concurrency)
    invoice = await invoices(args.invoices) if args.invoices else None
    return report(hello, invoice)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="/flow hello typed within a second")
    parser.add_argument("--invoices", type=int, default=3, help="approved invoices (0: skip)")
    parser.add_argument(
        "--concurrency", type=int, help="SWITCHBOARD_WORKER_CONCURRENCY (default: serve's)"
    )
    args = parser.parse_args(argv)
    sys.exit(asyncio.run(measure(args)))


if __name__ == "__main__":
    main()
