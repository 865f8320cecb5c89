"""Inbound requests reach their owners: intake, classify, owner cards, triage, SLAs, shadow mode."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from sandbox.slack import signed_headers
from tests.support.harness import SIGNING_SECRET, Harness, running_bot
from tests.support.routing import ROUTING, SEED
from tests.support.stores import Database
from workflows.routing import shadow_report
from workflows.tables import ExampleRow, RunRow


def write(
    folder: Path, *, min_confidence: float = 0.3, shadow: bool = False, first_response: str = "1h"
) -> Path:
    (folder / "inquiries.yaml").write_text(
        textwrap.dedent(
            ROUTING.format(
                min_confidence=min_confidence,
                shadow=str(shadow).lower(),
                first_response=first_response,
            )
        )
    )
    return folder


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_bot(database, workflows_dir=write(tmp_path), seed=SEED) as running:
        yield running


def actions(message: dict[str, Any]) -> list[str]:
    return [
        e["action_id"]
        for b in message.get("blocks", [])
        if b["type"] == "actions"
        for e in b["elements"]
    ]


async def first_message(harness: Harness, channel: str) -> dict[str, Any]:
    return await harness.slack.wait_for(
        lambda: next(iter(harness.slack.messages(channel)), None),
        timeout=30,
        message=f"nothing in #{channel}",
    )


async def thread_says(harness: Harness, channel: str, ts: str, words: str) -> None:
    await harness.slack.wait_for(
        lambda: any(words in m["text"] for m in harness.slack.thread(channel, ts)[1:]),
        timeout=30,
        message=f"the requester's thread never said {words!r}",
    )


async def test_request_is_classified_routed_claimed_and_the_requester_sees_it(
    harness: Harness,
) -> None:
    slack = harness.slack
    request = await slack.user_posts("alice", "requests", "I was charged twice for my invoice")
    card = await first_message(harness, "billing")
    assert "charged twice" in card["text"]
    assert actions(card) == ["route:claim", "route:reassign", "route:close"]
    assert slack.messages("it-help") == [] and slack.messages("triage") == []

    await thread_says(harness, "requests", request["ts"], "Got it")
    await thread_says(harness, "requests", request["ts"], "routed to billing")
    await slack.click("carol", card["ts"], "route:claim", channel="billing")
    await thread_says(harness, "requests", request["ts"], "claimed by")
    claimed = slack.message(slack.channel_id("billing"), card["ts"])
    assert claimed is not None and actions(claimed) == ["route:reassign", "route:close"]

    await slack.click("carol", card["ts"], "route:close", channel="billing")
    await thread_says(harness, "requests", request["ts"], "closed by")

    async def done() -> bool:
        async with harness.runtime.store.transaction() as session:
            run = (await session.scalars(select(RunRow))).one()
        return run.status == "succeeded"

    await slack.wait_for(done, timeout=15)


async def test_bot_posts_edits_and_thread_replies_start_nothing(harness: Harness) -> None:
    slack = harness.slack
    posted = await slack.user_posts("alice", "requests", "the website is down")
    await first_message(harness, "it-help")
    await slack.user_posts("bob", "requests", "me too", thread_ts=posted["ts"])
    await slack.user_edits("alice", "requests", posted["ts"], "the website is down again")
    async with harness.runtime.store.transaction() as session:
        runs = await session.scalar(select(func.count()).select_from(RunRow))
    assert runs == 1, "the bot's own replies, the thread reply and the edit started nothing"


async def test_slack_retries_and_duplicate_deliveries_start_one_run(harness: Harness) -> None:
    slack = harness.slack
    await slack.user_posts("alice", "requests", "my card payment failed")
    await first_message(harness, "billing")
    envelope = next(
        d.payload
        for d in slack.deliveries()
        if isinstance(d.payload, dict)
        and (d.payload.get("event") or {}).get("text") == "my card payment failed"
    )
    body = json.dumps(envelope).encode()
    async with httpx.AsyncClient() as client:
        for retry in (1, 2):
            headers = signed_headers(SIGNING_SECRET, body) | {
                "Content-Type": "application/json",
                "X-Slack-Retry-Num": str(retry),
                "X-Slack-Retry-Reason": "http_timeout",
            }
            response = await client.post(
                f"{harness.bot_url}/slack/events", content=body, headers=headers
            )
            assert response.status_code == 200
    again = dict(envelope, event_id="Ev-another-delivery-of-the-same-message")
    await slack.send_event(again["event"])
    async with harness.runtime.store.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(RunRow)) == 1
    assert len(slack.messages("billing")) == 1


async def test_unsure_requests_go_to_triage_and_one_click_routes_them(
    database: Database, tmp_path: Path
) -> None:
    folder = write(tmp_path, min_confidence=0.99)
    async with running_bot(database, workflows_dir=folder, seed=SEED) as harness:
        slack = harness.slack
        request = await slack.user_posts("alice", "requests", "my invoice page shows an error")
        card = await first_message(harness, "triage")
        picks = [a for a in actions(card) if a.startswith("route:pick")]
        assert picks, "the top candidates are offered as buttons"
        tech_button = next(
            e
            for b in card["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["value"].endswith("|tech")
        )
        await slack.click(
            "dave",
            card["ts"],
            tech_button["action_id"],
            value=tech_button["value"],
            channel="triage",
        )
        routed = await first_message(harness, "it-help")
        assert "invoice page shows an error" in routed["text"]
        await thread_says(harness, "requests", request["ts"], "re-routed it to tech")
        moved = slack.message(slack.channel_id("triage"), card["ts"])
        assert moved is not None and "sent to *tech*" in str(moved["blocks"])
        async with harness.runtime.store.transaction() as session:
            example = (await session.scalars(select(ExampleRow))).one()
        assert (example.label, example.predicted, example.source) == ("tech", None, "triage")
        assert example.text == "my invoice page shows an error"


async def test_shadow_mode_posts_no_card_and_is_scored(database: Database, tmp_path: Path) -> None:
    folder = write(tmp_path, shadow=True)
    async with running_bot(database, workflows_dir=folder, seed=SEED) as harness:
        slack = harness.slack
        await slack.user_posts("alice", "requests", "please refund my last invoice")
        await slack.user_posts("bob", "requests", "the app crashes when I open it")

        async def shadowed() -> list[RunRow] | None:
            async with harness.runtime.store.transaction() as session:
                runs = (await session.scalars(select(RunRow).order_by(RunRow.created_at))).all()
            return (
                list(runs) if len(runs) == 2 and all(r.status == "waiting" for r in runs) else None
            )

        runs = await slack.wait_for(shadowed, timeout=30)
        for channel in ("billing", "it-help", "triage"):
            assert slack.messages(channel) == [], f"shadow mode posted in #{channel}"
        await slack.slash_command("carol", "requests", f"route {runs[0].id} billing")
        answer = await slack.slash_command("carol", "requests", f"route {runs[1].id} billing")
        assert "Routed to billing" in answer.body
        report = await slack.wait_for(
            lambda: _decided(harness, 2), timeout=15, message="decisions not recorded"
        )
        assert report.decided == 2
        assert report.correct == 1 and report.accuracy == 0.5
        assert report.per_label == {"billing": (1, 2)}


async def _decided(harness: Harness, n: int) -> Any:
    report = await shadow_report(harness.runtime.store, "inquiries")
    return report if report.decided >= n else None


async def test_sla_reminds_then_escalates_across_a_restart(
    database: Database, tmp_path: Path
) -> None:
    folder = write(tmp_path, first_response="3s")
    async with running_bot(database, workflows_dir=folder, seed=SEED) as harness:
        slack = harness.slack
        request = await slack.user_posts("alice", "requests", "please refund my last invoice")
        await first_message(harness, "billing")
        await harness.restart()
        await thread_says(harness, "requests", request["ts"], "SLA reminder")
        await thread_says(harness, "requests", request["ts"], "SLA breached")
        escalation = await first_message(harness, "leads")
        assert "escalated here" in escalation["text"] or "escalated" in str(escalation["blocks"])
