"""Two `serve --no-worker` replicas and two `worker` processes on one PostgreSQL schema.

The replicas sit behind a round-robin balancer on loopback; the Slack emulator
and the webhook sender only know the balancer, so consecutive requests, and a
retry of the same one, land on different replicas. The replicas keep no state of
their own: everything they know is in the database, and each runs the scheduler.
Driven through it: slash commands (concurrently), message events whose acks are
lost so that Slack re-delivers them (``X-Slack-Retry-Num``) to the other replica,
approval clicks (two approvers clicking the same card at once), webhooks whose
``Idempotency-Key`` is replayed concurrently to both replicas, and an every-minute
cron that both replicas' schedulers fire. What must hold, counted by query:

- every request started exactly one run, and every schedule fire exactly one;
- every run succeeded, every job is done (none queued or leased), and only the
  worker processes executed jobs;
- each approval card has exactly one outcome; the audit trail verifies.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from connectors.webhook_out import sign
from sandbox.slack import SlackEmulator, WorkspaceSeed
from tests.engine_proof.support import WorkerProcesses
from tests.support.balancer import RoundRobinBalancer
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET
from tests.support.replicas import ServeReplicas
from tests.support.servers import serve_asgi
from tests.support.stores import Database
from workflows import audit
from workflows.store import Store
from workflows.tables import GateRow, JobRow, RequestRow, RunRow

# ~60-90 s: start-up, then waiting for the next minute boundary so both schedulers fire it.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

HOOK_SECRET = "whsec-replicas-4c2d"
PINGS = 6
ORDERS = 3
HOOK_KEYS = 4
PURCHASES = 2

WORKFLOWS = {
    "ping.yaml": """\
name: ping
channel: "#general"
triggers: [{command: ping}]
steps:
  - id: answer
    post: {text: "pong {{ input.text }}"}
""",
    "watch.yaml": """\
name: watch
channel: "#general"
triggers:
  - message: {channel: "#general", match: "^order "}
steps:
  - id: note
    set: {seen: true}
""",
    "hook.yaml": """\
name: hook
channel: "#general"
triggers:
  - webhook: {secret_env: REPLICAS_HOOK_SECRET}
steps:
  - id: note
    set: {got: true}
""",
    "buy.yaml": """\
name: buy
channel: "#general"
triggers: [{command: buy}]
steps:
  - id: review
    approve:
      channel: "#finance-approvals"
      approvers: ["@finance"]
      not_requester: true
      title: "Buy: {{ input.text }}"
      summary: "{{ input.user }} asks for {{ input.text }}"
  - id: book
    set: {booked: true}
""",
    # run_once: both replicas also catch up the last minute at start-up (one run between them).
    "tick.yaml": """\
name: tick
channel: "#general"
triggers:
  - schedule: {cron: "* * * * *", misfire: run_once, grace: 90}
steps:
  - id: note
    set: {ticked: true}
""",
}


@dataclass
class Deployment:
    slack: SlackEmulator
    balancer: RoundRobinBalancer
    http: httpx.AsyncClient
    """Talks to the balancer, as a webhook sender on the internet would."""
    store: Store
    replica_urls: list[str]
    started_at: datetime


async def test_replicas_behind_a_balancer_handle_everything_exactly_once(
    pg_database: Database, tmp_path: Path
) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    for name, text in WORKFLOWS.items():
        (folder / name).write_text(text)
    # Event retries are sent by hand, so that they land where the test says.
    slack = SlackEmulator(
        SIGNING_SECRET, BOT_TOKEN, WorkspaceSeed.demo(), rate_limits=None, event_retry_delays=None
    )
    store = pg_database.store()
    async with serve_asgi(slack.asgi_app) as slack_url:
        slack.base_url = slack_url
        env = _process_env(pg_database, slack, folder)
        replicas = ServeReplicas(env, tmp_path)
        workers = WorkerProcesses(env, tmp_path, concurrency=8)
        balancer = RoundRobinBalancer(await replicas.start(2))
        try:
            await workers.start(2)
            await replicas.wait_ready()
            async with (
                serve_asgi(balancer.asgi_app) as balancer_url,
                httpx.AsyncClient(base_url=balancer_url, timeout=10) as http,
            ):
                slack.request_url = f"{balancer_url}/slack/events"
                deployment = Deployment(
                    slack, balancer, http, store, replicas.urls, datetime.now(UTC)
                )
                await _drive(deployment)
                await _until_finished(store, deadline=60)
                fired_live = await _until_live_fire(store, deployment.started_at)
                await _until_finished(store, deadline=30)
                await _verify(deployment, fired_live)
            replica_codes = await replicas.stop()
            worker_codes = await workers.stop()
        except BaseException:
            print(replicas.logs(), workers.logs())
            raise
        finally:
            await replicas.stop()
            await workers.stop()
            await balancer.aclose()
            await slack.aclose()
            await store.dispose()
    # uvicorn re-raises SIGTERM after its graceful shutdown; a replica killed at the
    # stop timeout would show -SIGKILL.
    assert replica_codes == [-signal.SIGTERM] * 2, replicas.logs()
    assert worker_codes == [0, 0], workers.logs()


def _process_env(database: Database, slack: SlackEmulator, folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        **database.env(),
        "SLACK_API_URL": slack.api_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SWITCHBOARD_WORKFLOWS": str(folder),
        "SWITCHBOARD_POLL_SECONDS": "0.1",
        "SWITCHBOARD_LEASE_SECONDS": "5",
        "SWITCHBOARD_SLACK_POST_BURST": "1000",
        "SWITCHBOARD_SLACK_POSTS_PER_S": "1000",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
        "REPLICAS_HOOK_SECRET": HOOK_SECRET,
    }


async def _drive(deployment: Deployment) -> None:
    await _slash_commands(deployment)
    await _events_with_retries(deployment)
    await _webhooks_with_replays(deployment)
    await _approvals(deployment)


async def _slash_commands(deployment: Deployment) -> None:
    """Concurrent commands alternate between the replicas; each acks with a 200."""
    slack = deployment.slack
    results = await asyncio.gather(
        *(slack.slash_command("alice", "general", f"ping n{i}") for i in range(PINGS))
    )
    assert [result.status for result in results] == [200] * PINGS, [r.body for r in results]


async def _events_with_retries(deployment: Deployment) -> None:
    """Two acks lost in a row: Slack re-delivers to the other replica, then back to the first."""
    slack, balancer = deployment.slack, deployment.balancer
    for i in range(ORDERS):
        text = f"order {i}"
        # Only this message's deliveries: the bot's own posts arrive as events meanwhile.
        balancer.lose_answers(2, when=_mentions(text))
        await slack.user_posts("bob", "general", text)
        (event_id,) = slack.failed_events()
        assert (await slack.retry_event(event_id)).status == 502
        final = await slack.retry_event(event_id)
        assert final.status == 200, final.body
        deliveries = [entry for entry in balancer.log if entry.event_id == event_id]
        assert [entry.retry_num for entry in deliveries] == [0, 1, 2]
        assert all(entry.status == 200 for entry in deliveries), deliveries
        first, retried, last = (entry.upstream for entry in deliveries)
        assert retried != first and last == first, deliveries


def _mentions(text: str) -> Callable[[bytes], bool]:
    return lambda body: text.encode() in body


async def _webhooks_with_replays(deployment: Deployment) -> None:
    """Three deliveries of one key at once (both replicas race), then a late replay."""
    for i in range(HOOK_KEYS):
        key = f"delivery-{i}"
        body = json.dumps({"n": i}).encode()
        answers = await asyncio.gather(*(_post_hook(deployment, body, key) for _ in range(3)))
        answers.append(await _post_hook(deployment, body, key))
        assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
        replies = [answer.json() for answer in answers]
        assert len({reply["run_id"] for reply in replies}) == 1, replies
        assert sorted(reply["duplicate"] for reply in replies) == [False, True, True, True]


async def _post_hook(deployment: Deployment, body: bytes, key: str) -> httpx.Response:
    sent_at = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Switchboard-Timestamp": str(sent_at),
        "X-Switchboard-Signature": sign(HOOK_SECRET, sent_at, body),
        "Idempotency-Key": key,
    }
    return await deployment.http.post("/hooks/hook", content=body, headers=headers)


async def _approvals(deployment: Deployment) -> None:
    """One card approved by one click; another clicked by two approvers at the same time."""
    slack = deployment.slack
    for i in range(PURCHASES):
        assert (await slack.slash_command("alice", "general", f"buy laptop {i}")).ok
    cards = await slack.wait_for(
        lambda: _cards(slack) if len(_cards(slack)) == PURCHASES else None,
        timeout=30,
        message="approval cards were not posted",
    )
    assert cards is not None  # wait_for returns only a truthy answer; mypy cannot know
    first, second = cards
    click = await slack.click("carol", first["ts"], "approval:approve", channel="finance-approvals")
    assert click.ok, click.body
    both = await asyncio.gather(
        slack.click("carol", second["ts"], "approval:approve", channel="finance-approvals"),
        slack.click("bob", second["ts"], "approval:approve", channel="finance-approvals"),
    )
    assert all(result.ok for result in both), [result.body for result in both]


def _cards(slack: SlackEmulator) -> list[dict[str, Any]]:
    return [m for m in slack.messages("finance-approvals") if "Buy:" in str(m.get("text", ""))]


async def _until_finished(store: Store, deadline: float) -> None:
    end = time.monotonic() + deadline
    while True:
        async with store.transaction() as session:
            statuses = Counter((await session.scalars(select(RunRow.status))).all())
            jobs = Counter((await session.scalars(select(JobRow.status))).all())
        if set(statuses) <= {"succeeded", "failed"} and set(jobs) <= {"done", "failed"}:
            return
        if time.monotonic() > end:
            raise AssertionError(f"stuck after {deadline}s: runs {statuses}, jobs {jobs}")
        await asyncio.sleep(0.2)


async def _until_live_fire(store: Store, started_at: datetime) -> datetime:
    """Wait for the first minute boundary after start-up: both schedulers were up for it."""
    boundary = started_at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = time.monotonic() + (boundary - datetime.now(UTC)).total_seconds() + 30
    while time.monotonic() < end:
        if boundary.isoformat() in await _fire_times(store):
            return boundary
        await asyncio.sleep(0.25)
    raise AssertionError(f"no run for the fire at {boundary.isoformat()}")


async def _fire_times(store: Store) -> list[str]:
    async with store.transaction() as session:
        runs = (await session.scalars(select(RunRow).where(RunRow.workflow == "tick"))).all()
    return [str(run.context["input"]["schedule"]["fire_time"]) for run in runs]


async def _metric_samples(http: httpx.AsyncClient, base_url: str) -> dict[str, float]:
    """Each sample name of a replica's /metrics, summed over its labels."""
    answer = await http.get(f"{base_url}/metrics")
    answer.raise_for_status()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


async def _verify(deployment: Deployment, fired_live: datetime) -> None:
    async with deployment.store.transaction() as session:
        runs = (await session.scalars(select(RunRow))).all()
        jobs = (await session.scalars(select(JobRow))).all()
        requests = (await session.scalars(select(RequestRow))).all()
        gates = (await session.scalars(select(GateRow))).all()

    per_workflow = Counter(run.workflow for run in runs)
    fires = Counter(await _fire_times(deployment.store))
    assert per_workflow == {
        "ping": PINGS,
        "watch": ORDERS,
        "hook": HOOK_KEYS,
        "buy": PURCHASES,
        "tick": len(fires),
    }, per_workflow
    assert set(fires.values()) == {1}, fires
    # The start-up catch-up (both replicas, run_once) and the live fire both produced a run,
    # and no minute between the first and the last fire was lost.
    caught_up = fired_live - timedelta(minutes=1)
    assert {caught_up.isoformat(), fired_live.isoformat()} <= set(fires), fires
    minutes = sorted(datetime.fromisoformat(fire) for fire in fires)
    assert minutes == [minutes[0] + timedelta(minutes=n) for n in range(len(minutes))], fires
    assert len(requests) == len(runs) and len({r.request_id for r in runs}) == len(runs)

    assert {run.status for run in runs} == {"succeeded"}, [(r.workflow, r.error) for r in runs]
    assert Counter(job.status for job in jobs).keys() == {"done"}
    for url in deployment.replica_urls:
        # `serve --no-worker`: this replica acked requests and executed no step.
        samples = await _metric_samples(deployment.http, url)
        assert samples.get("switchboard_requests_received_total", 0) > 0, (url, samples)
        assert samples.get("switchboard_step_duration_seconds_count", 0) == 0, (url, samples)

    assert sorted(gate.status for gate in gates) == ["approved"] * PURCHASES
    signals = Counter(job.run_id for job in jobs if job.kind == "signal")
    assert sorted(signals.values()) == [1] * PURCHASES, signals

    used = [len(deployment.balancer.handled_by(i)) for i in range(2)]
    # Round-robin, except that a Slack retry goes to the other replica than its first try:
    # the split is even, not exact.
    assert min(used) > 0 and abs(used[0] - used[1]) <= max(4, sum(used) // 10), used
    verified = await audit.verify(deployment.store)
    assert verified.ok, verified.problem
