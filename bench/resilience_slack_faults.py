"""Slack pushes back for a period (429 bursts with Retry-After, 5xx): nothing lost, all retried.

    python -m bench.resilience_slack_faults                 # 150 runs, 10 s of faults, SQLite
    python -m bench.resilience_slack_faults --runs 300 --fault-seconds 20 --backend postgres

The whole bot (``tests.support.harness.running_bot``: the same composition root
as ``switchboard serve``, one worker) runs against the Slack emulator. ``/flow
hello`` commands arrive as signed slash commands; for ``--fault-seconds`` the
emulator answers ``chat.postMessage`` and ``chat.update`` with scripted bursts:
``429 ratelimited`` with ``Retry-After: 1`` or ``2``, and ``500``/``503``. The
faults are answered before anything is posted (as Slack does), so a retry is safe.

PASS when: every run succeeded; each of the 4 keyed messages per run exists
exactly once (none lost, none doubled); every call answered 429/5xx was sent
again (same idempotency key) and succeeded later; and no retry after a 429 came
sooner than its Retry-After (50 ms tolerance).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.resilience_kill import fresh_database
from bot.settings import BUNDLED_WORKFLOWS
from sandbox.slack import ApiCall, Fault
from tests.support.harness import running_bot
from workflows.tables import RunRow

MESSAGES_PER_RUN = 4  # root, greet result, reply post, reply result
METHODS = ("chat.postMessage", "chat.update")
BURST = [
    Fault.rate_limited(retry_after=1),
    Fault.rate_limited(retry_after=1),
    Fault.server_error(500),
    Fault.rate_limited(retry_after=2),
    Fault.server_error(503),
]
TOLERANCE_S = 0.05


def key_of(call: ApiCall) -> str | None:
    metadata = call.args.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return None
    if not isinstance(metadata, dict):
        return None
    key = (metadata.get("event_payload") or {}).get("key")
    return f"{call.method}:{key}" if key else None


def retry_after(call: ApiCall) -> float | None:
    value = {k.lower(): v for k, v in call.headers.items()}.get("retry-after")
    return float(value) if value is not None else None


async def main_async(args: argparse.Namespace) -> int:
    started = time.monotonic()
    print(
        f"backend={args.backend} runs={args.runs} fault_seconds={args.fault_seconds} "
        f"cpus={os.cpu_count()} load_1m={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sb-slackfaults-") as tmp_name:
        tmp = Path(tmp_name)
        folder = tmp / "workflows"
        folder.mkdir()
        shutil.copy(BUNDLED_WORKFLOWS / "hello.yaml", folder / "hello.yaml")
        async with (
            fresh_database(args.backend, tmp) as database,
            running_bot(database, workflows_dir=folder) as harness,
        ):
            slack = harness.slack
            stop = asyncio.Event()
            bursts = 0

            async def feed_faults() -> None:
                """Keep a burst of faults queued on each method for the whole fault period."""
                nonlocal bursts
                end = time.monotonic() + args.fault_seconds
                while time.monotonic() < end and not stop.is_set():
                    for method in METHODS:
                        pending = slack._api.faults.get(method)
                        if not pending:
                            slack.inject_faults(method, BURST)
                            bursts += 1
                    await asyncio.sleep(0.25)
                slack.clear_faults()

            feeder = asyncio.create_task(feed_faults())
            acks: Counter[str] = Counter()
            interval = args.send_seconds / args.runs
            for i in range(args.runs):
                result = await slack.slash_command("alice", "general", f"hello run {i}")
                acks["ok" if result.ok else "failed"] += 1
                await asyncio.sleep(interval)
            await feeder
            deadline = time.monotonic() + args.deadline
            statuses: Counter[str] = Counter()
            while time.monotonic() < deadline:
                async with harness.runtime.store.transaction() as session:
                    statuses = Counter((await session.scalars(select(RunRow.status))).all())
                if statuses.get("succeeded", 0) == args.runs:
                    break
                await asyncio.sleep(0.2)
            else:
                problems.append(f"runs not all succeeded after {args.deadline:.0f}s: {statuses}")
            stop.set()
            await asyncio.sleep(0.5)
            messages = slack.messages("general", include_replies=True)
            calls = [c for c in slack.api_calls() if c.method in METHODS]

    if acks["failed"]:
        problems.append(f"{acks['failed']} slash commands not acknowledged")
    keys = Counter(
        (m.get("metadata") or {}).get("event_payload", {}).get("key")
        for m in messages
        if m.get("metadata")
    )
    doubled = {k: n for k, n in keys.items() if n > 1}
    lost = args.runs * MESSAGES_PER_RUN - len(keys)
    if doubled:
        problems.append(f"{len(doubled)} messages posted more than once")
    if lost:
        problems.append(f"{lost} messages missing")

    by_key: dict[str, list[ApiCall]] = defaultdict(list)
    for call in sorted(calls, key=lambda c: c.at):
        key = key_of(call)
        if key is not None:
            by_key[key].append(call)
    answers = Counter(call.status for call in calls)
    faulted = not_retried = early = 0
    early_examples: list[str] = []
    waits: list[float] = []
    for key, series in by_key.items():
        for i, call in enumerate(series):
            if call.status in (200,) and call.ok:
                continue
            if call.status not in (429, 500, 503):
                continue
            faulted += 1
            later = series[i + 1 :]
            if not any(c.ok for c in later):
                not_retried += 1
                continue
            if call.status == 429:
                wait = later[0].at - call.at
                waits.append(wait)
                asked = retry_after(call) or 0.0
                if wait + TOLERANCE_S < asked:
                    early += 1
                    early_examples.append(f"{key}: {wait:.2f}s < {asked:g}s")
    if not_retried:
        problems.append(f"{not_retried} faulted calls never succeeded on a retry")
    if early:
        problems.append(f"{early} retries earlier than Retry-After, e.g. {early_examples[:3]}")
    if answers[429] == 0 or answers[500] + answers[503] == 0:
        problems.append(f"the faults did not bite: {dict(answers)}")
    min_wait = min(waits, default=float("nan"))
    print(f"slash commands: {dict(acks)}; runs: {dict(statuses)}")
    print(f"{METHODS} answers: {dict(answers)} ({bursts} bursts injected)")
    print(
        f"faulted calls {faulted}, retried and then ok {faulted - not_retried}, "
        f"retries after 429: {len(waits)}, shortest wait {min_wait:.2f}s, "
        f"earlier than Retry-After {early}"
    )
    print(
        f"messages: {len(keys)} distinct keyed, {len(doubled)} doubled, {lost} missing; "
        f"elapsed {time.monotonic() - started:.1f}s, load_1m={os.getloadavg()[0]:.2f}"
    )
    if problems:
        print("FAIL: " + "; ".join(problems))
        return 1
    print(
        f"PASS: {args.runs} runs, {len(keys)} messages each exactly once through "
        f"{answers[429]} x 429 and {answers[500] + answers[503]} x 5xx; Retry-After honoured"
    )
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runs", type=int, default=150)
    parser.add_argument("--send-seconds", type=float, default=10.0, help="spread commands over")
    parser.add_argument("--fault-seconds", type=float, default=10.0)
    parser.add_argument("--deadline", type=float, default=240.0)
    args: Any = parser.parse_args(argv)
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
