"""The AI provider times out, then answers garbage, for a period: every request still lands.

    python -m bench.resilience_ai_faults                    # 4 phases x 10 requests, SQLite
    python -m bench.resilience_ai_faults --per-phase 25 --timeout-s 1

The whole bot (``tests.support.harness.running_bot``) with an OpenAI-compatible
provider pointed at the local fake (``tests/fakes/openai_server.py``); the
bundled local model stands behind it, as in production (``bot/ai.py``). Messages
posted in ``#requests`` are classified and routed by the routing workflow of the
test suite (owners ``#billing`` / ``#it-help``, unsure -> ``#triage``). Requests
arrive in four phases:

1. healthy (the fake answers by rule),
2. timeout (every answer delayed past ``OPENAI_TIMEOUT_S``),
3. garbage (``not json at all`` as the model's content),
4. healthy again.

PASS when: every request produced exactly one card, in an owner channel or in
``#triage`` (none nowhere, none twice); no run failed; no job is stuck (leased,
or queued and overdue by more than the timeout + 30 s); and requests in the
fault phases were answered by the fallback or sent to triage (counts per phase
and destination are printed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import textwrap
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bench.resilience_kill import fresh_database
from tests.fakes.openai_server import Answer, Behaviour, Content, Delay, FakeOpenAI
from tests.support.harness import running_bot
from tests.support.routing import ROUTING, SEED
from workflows.tables import JobRow, RunRow

TEXTS = [
    "I was charged twice for my subscription",
    "the dashboard shows error 500 since this morning",
    "please refund the wrong invoice amount",
    "I cannot log in, the app crashes",
    "something odd happened with my account yesterday",
]
DESTINATIONS = ("billing", "it-help", "triage")
MARK = re.compile(r"\[req-(\d{4})\]")


async def main_async(args: argparse.Namespace) -> int:
    started = time.monotonic()
    print(
        f"per_phase={args.per_phase} timeout_s={args.timeout_s} backend={args.backend} "
        f"cpus={os.cpu_count()} load_1m={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    phases: list[tuple[str, Behaviour]] = [
        ("healthy", Answer()),
        ("timeout", Delay(args.timeout_s * 4)),
        ("garbage", Content("not json at all")),
        ("healthy-again", Answer()),
    ]
    problems: list[str] = []
    fake = FakeOpenAI()
    phase_of: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="sb-aifaults-") as tmp_name:
        tmp = Path(tmp_name)
        folder = tmp / "workflows"
        folder.mkdir()
        workflow = ROUTING.format(min_confidence=0.3, shadow="false", first_response="1h")
        (folder / "inquiries.yaml").write_text(textwrap.dedent(workflow))
        async with (
            fake.running() as base_url,
            fresh_database(args.backend, tmp) as database,
            running_bot(
                database,
                workflows_dir=folder,
                seed=SEED,
                OPENAI_BASE_URL=base_url,
                OPENAI_API_KEY="sk-bench",
                OPENAI_TIMEOUT_S=args.timeout_s,
            ) as harness,
        ):
            slack = harness.slack
            n = 0
            for name, behaviour in phases:
                fake.default = behaviour
                for _ in range(args.per_phase):
                    text = f"[req-{n:04d}] {TEXTS[n % len(TEXTS)]}"
                    phase_of[n] = name
                    await slack.user_posts("alice", "requests", text)
                    n += 1
                    await asyncio.sleep(args.interval)
                # The phase lasts until its requests have been answered (or given up on).
                await wait_cards(slack, n, args.deadline)
            fake.default = Answer()
            placed = await wait_cards(slack, n, args.deadline)
            store = harness.runtime.store
            grace = timedelta(seconds=args.timeout_s + 30)
            settle_until = time.monotonic() + args.timeout_s + 30
            while True:  # let jobs in flight finish; what is still leased or overdue is stuck
                async with store.transaction() as session:
                    runs = (await session.scalars(select(RunRow))).all()
                    jobs = (await session.scalars(select(JobRow))).all()
                now = datetime.now(UTC)
                stuck = [
                    j
                    for j in jobs
                    if j.status == "leased" or (j.status == "queued" and j.due_at < now)
                ]
                if not stuck or time.monotonic() > settle_until:
                    break
                await asyncio.sleep(0.5)
            stuck = [j for j in stuck if j.status == "leased" or j.due_at < now - grace]
            remote_requests = len(fake.requests)
    per_phase: dict[str, Counter[str]] = defaultdict(Counter)
    twice = nowhere = 0
    for i in range(n):
        where = placed.get(i, [])
        if not where:
            nowhere += 1
        elif len(where) > 1:
            twice += 1
        per_phase[phase_of[i]][where[0] if len(where) == 1 else "nowhere/twice"] += 1
    failed = [r for r in runs if r.status == "failed"]
    if nowhere:
        problems.append(f"{nowhere} requests never produced a card")
    if twice:
        problems.append(f"{twice} requests produced more than one card")
    if failed:
        problems.append(f"{len(failed)} runs failed, e.g. {failed[0].error}")
    if stuck:
        problems.append(f"{len(stuck)} jobs stuck: {Counter(j.step_id for j in stuck)}")
    print(f"requests: {n}; remote model calls: {remote_requests}")
    for name, _ in phases:
        print(f"  {name}: {dict(per_phase[name])}")
    run_states = dict(Counter(r.status for r in runs))
    print(f"runs: {run_states}; jobs: {dict(Counter(j.status for j in jobs))}")
    print(f"elapsed {time.monotonic() - started:.1f}s, load_1m={os.getloadavg()[0]:.2f}")
    if problems:
        print("FAIL: " + "; ".join(problems))
        return 1
    print(
        f"PASS: {n} requests, each exactly one card (owner or triage) through a timeout and a "
        f"garbage period; 0 runs failed, 0 jobs stuck"
    )
    return 0


async def wait_cards(slack: object, total: int, deadline: float) -> dict[int, list[str]]:
    """Until each of the first ``total`` requests has a card (or the deadline): where they are."""
    end = time.monotonic() + deadline
    placed: dict[int, list[str]] = {}
    while time.monotonic() < end:
        placed = defaultdict(list)
        for channel in DESTINATIONS:
            for message in slack.messages(channel):  # type: ignore[attr-defined]
                match = MARK.search(message.get("text", ""))
                if match:
                    placed[int(match.group(1))].append(channel)
        if all(i in placed for i in range(total)):
            return placed
        await asyncio.sleep(0.2)
    return placed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--per-phase", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between requests")
    parser.add_argument("--timeout-s", type=float, default=1.0, help="OPENAI_TIMEOUT_S")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds per phase")
    args = parser.parse_args(argv)
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
