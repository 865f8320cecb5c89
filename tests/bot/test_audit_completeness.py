"""The audit trail says who started a run, by which trigger, from where; and who was refused.

Everything goes through real HTTP: the emulator delivers signed Slack requests and
webhooks are signed and posted to the running bot. Records carry ids, never text.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectors.webhook_out import sign
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows.schedules import ScheduleEntry, start_fire
from workflows.tables import AuditRow

HOOK_SECRET = "whsec-audit-93c1"
ANYONE = """
name: note
triggers:
  - command: note
  - message: {channel: "#ap-inbox", match: "^invoice"}
  - webhook: {secret_env: TEST_AUDIT_HOOK_SECRET}
  - schedule: {cron: "0 9 * * *"}
steps:
  - id: pause
    wait: {duration: 1h}
"""
GUARDED = """
name: payout
triggers: [{command: payout}, {message: {channel: "#general", match: "^payout"}}]
allowed_starters: ["@finance-leads"]
steps:
  - id: note
    set: {ok: true}
"""


@pytest.fixture
async def harness(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TEST_AUDIT_HOOK_SECRET", HOOK_SECRET)
    (tmp_path / "note.yaml").write_text(ANYONE)
    (tmp_path / "payout.yaml").write_text(GUARDED)
    async with running_bot(database, workflows_dir=tmp_path, run_workers=0) as running:
        yield running


async def records(harness: Harness, action: str) -> list[AuditRow]:
    async with harness.runtime.store.read() as session:
        rows = await session.scalars(
            select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.seq)
        )
        return list(rows.all())


def run_id_in(answer: str) -> str:
    return answer.split("run `", 1)[1].split("`", 1)[0]


async def test_run_started_from_a_command_names_requester_trigger_and_source(
    harness: Harness,
) -> None:
    slack = harness.slack
    result = await slack.slash_command("alice", "general", "note secret words here")
    assert "Started" in result.body, result.body
    [started] = await records(harness, "run.started")
    assert started.run_id == run_id_in(result.body)
    assert started.actor == slack.user_id("alice")
    assert started.detail == {
        "workflow": "note",
        "trigger": "command",
        "requester": slack.user_id("alice"),
        "team": result.payload["team_id"],
        "channel": slack.channel_id("general"),
        "trigger_id": result.payload["trigger_id"],
    }
    assert "secret" not in json.dumps(started.detail), "ids only, never the request text"


async def test_run_started_from_a_message_names_the_message(harness: Harness) -> None:
    slack = harness.slack
    message = await slack.user_posts("bob", "ap-inbox", "invoice 42 is late")

    async def started() -> list[AuditRow] | None:
        return await records(harness, "run.started") or None

    [row] = await slack.wait_for(started, timeout=5, message="no run.started")
    assert row.actor == slack.user_id("bob")
    assert row.detail["trigger"] == "message"
    assert row.detail["channel"] == slack.channel_id("ap-inbox")
    assert row.detail["message_ts"] == message["ts"]
    assert row.detail["team"]
    assert "invoice" not in json.dumps(row.detail)


async def post_hook(harness: Harness, key: str) -> httpx.Response:
    body = json.dumps({"text": "deploy done"}).encode()
    sent_at = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Switchboard-Timestamp": str(sent_at),
        "X-Switchboard-Signature": sign(HOOK_SECRET, sent_at, body),
        "Idempotency-Key": key,
    }
    async with httpx.AsyncClient(base_url=harness.bot_url) as http:
        return await http.post("/hooks/note", content=body, headers=headers)


async def test_run_started_from_a_webhook_names_its_idempotency_key(harness: Harness) -> None:
    response = await post_hook(harness, "delivery-77")
    assert response.status_code == 200, response.text
    [row] = await records(harness, "run.started")
    assert row.run_id == response.json()["run_id"]
    assert row.actor == "webhook"
    assert row.detail["trigger"] == "webhook"
    assert row.detail["idempotency_key"] == "delivery-77"
    assert "deploy" not in json.dumps(row.detail)


async def test_a_duplicate_delivery_adds_no_second_run_started(harness: Harness) -> None:
    for _ in range(2):
        assert (await post_hook(harness, "delivery-78")).status_code == 200
    assert len(await records(harness, "run.started")) == 1


async def test_run_started_by_a_schedule_names_its_fire_time(harness: Harness) -> None:
    workflow = harness.runtime.deps.workflows["note"]
    [trigger] = [t for t in workflow.triggers if hasattr(t, "schedule")]
    fire = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    entry = ScheduleEntry(workflow=workflow, index=3, spec=trigger.schedule)  # type: ignore[attr-defined]
    started = await start_fire(harness.runtime.store, entry, fire, fire)
    [row] = await records(harness, "run.started")
    assert row.run_id == started.run_id
    assert row.actor == "schedule"
    assert row.detail["trigger"] == "schedule"
    assert row.detail["fire_time"] == fire.isoformat()


async def test_a_refused_command_is_audited_with_who_what_rule_and_where(
    harness: Harness,
) -> None:
    slack = harness.slack
    refused = await slack.slash_command("dave", "general", "payout 10")
    assert "can't start" in refused.body
    [row] = await records(harness, "run.refused")
    assert row.run_id is None
    assert row.actor == slack.user_id("dave")
    assert row.detail == {
        "workflow": "payout",
        "rule": "allowed_starters",
        "allowed": ["@finance-leads"],
        "trigger": "command",
        "requester": slack.user_id("dave"),
        "team": refused.payload["team_id"],
        "channel": slack.channel_id("general"),
        "trigger_id": refused.payload["trigger_id"],
        "suppressed": 0,
    }
    assert await records(harness, "run.started") == []


async def test_a_refused_channel_message_is_audited(harness: Harness) -> None:
    slack = harness.slack
    message = await slack.user_posts("dave", "general", "payout for the quokka sanctuary please")

    async def refused() -> list[AuditRow] | None:
        return await records(harness, "run.refused") or None

    [row] = await slack.wait_for(refused, timeout=5, message="refusal not audited")
    assert row.actor == slack.user_id("dave")
    assert row.detail["workflow"] == "payout"
    assert row.detail["trigger"] == "message"
    assert row.detail["message_ts"] == message["ts"]
    assert "quokka" not in json.dumps(row.detail)


async def test_a_flood_of_refused_messages_writes_a_bounded_audit(harness: Harness) -> None:
    # Every refused message is still refused (nothing starts), but a person (or a script)
    # posting into a watched channel must not write one audit record per message.
    slack = harness.slack
    for n in range(30):
        await slack.user_posts("dave", "general", f"payout {n} please")

    async def all_seen() -> list[AuditRow] | None:
        rows = await records(harness, "run.refused")
        return rows if rows else None

    await slack.wait_for(all_seen, timeout=5, message="refusal not audited")
    await slack.wait_for(
        lambda: len(slack.messages("general")) >= 30, timeout=10, message="not all posted"
    )
    rows = await records(harness, "run.refused")
    assert len(rows) <= 2, [row.detail for row in rows]
    assert await records(harness, "run.started") == []
