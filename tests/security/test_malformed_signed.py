"""Correctly signed but malformed Slack requests: one short 400, nothing started, no crash
logged (finding 12). The shape check runs after verification and before Bolt."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from tests.support.edge import (
    FORM,
    JSON_TYPE,
    captured_logs,
    log_records,
    request_counts,
    slack_headers,
)
from tests.support.harness import SIGNING_SECRET, Harness, running_bot
from tests.support.stores import Database
from workflows.tables import RunRow


@pytest.fixture
async def bot(database: Database) -> AsyncIterator[Harness]:
    async with running_bot(database) as harness:
        yield harness


def interaction(payload: Any) -> tuple[bytes, str]:
    return urlencode({"payload": json.dumps(payload)}).encode(), FORM


def as_json(payload: Any) -> tuple[bytes, str]:
    return json.dumps(payload).encode(), JSON_TYPE


TEAM = {"id": "T0001", "domain": "demo"}
USER = {"id": "U0001", "name": "alice", "team_id": "T0001"}
ACTION = {"action_id": "approval:approve", "block_id": "b", "type": "button", "value": "x"}
VIEW = {"id": "V1", "type": "modal", "callback_id": "approval:reject", "state": {"values": {}}}

MALFORMED: list[tuple[str, tuple[bytes, str]]] = [
    (
        "block_actions without user",
        interaction({"type": "block_actions", "team": TEAM, "actions": [ACTION]}),
    ),
    (
        "block_actions with user null",
        interaction({"type": "block_actions", "user": None, "team": TEAM, "actions": [ACTION]}),
    ),
    (
        "block_actions without actions",
        interaction({"type": "block_actions", "user": USER, "team": TEAM}),
    ),
    (
        "view_submission without view.type",
        interaction(
            {
                "type": "view_submission",
                "user": USER,
                "team": TEAM,
                "view": {k: v for k, v in VIEW.items() if k != "type"},
            }
        ),
    ),
    (
        "view_submission view is a string",
        interaction({"type": "view_submission", "user": USER, "team": TEAM, "view": "V1"}),
    ),
    ("view_closed without user", interaction({"type": "view_closed", "team": TEAM, "view": VIEW})),
    ("shortcut without callback_id", interaction({"type": "shortcut", "user": USER, "team": TEAM})),
    (
        "message_action without message",
        interaction(
            {
                "type": "message_action",
                "callback_id": "send_to_switchboard",
                "user": USER,
                "team": TEAM,
                "channel": {"id": "C1"},
            }
        ),
    ),
    ("payload=null", (b"payload=null", FORM)),
    ("payload is a list", interaction([1, 2])),
    ("payload not JSON", (b"payload=%7B%22type", FORM)),
    ("payload without type", interaction({"user": USER})),
    (
        "command without user_id",
        (
            urlencode(
                {"command": "/flow", "text": "hello", "team_id": "T0001", "channel_id": "C1"}
            ).encode(),
            FORM,
        ),
    ),
    ("form with neither command nor payload", (b"text=hello", FORM)),
    ("form body labelled JSON", (b"command=%2Fflow&text=hi", JSON_TYPE)),
    ("invalid UTF-8 JSON", (b'{"type": "\xff"}', JSON_TYPE)),
    ("JSON array", as_json([{"type": "event_callback"}])),
    ("event_callback without event", as_json({"type": "event_callback", "team_id": "T0001"})),
    (
        "event_callback event without type",
        as_json({"type": "event_callback", "team_id": "T0001", "event": {"user": "U1"}}),
    ),
    (
        "event_callback event is a list",
        as_json({"type": "event_callback", "team_id": "T0001", "event": []}),
    ),
    ("url_verification without challenge", as_json({"type": "url_verification"})),
    (
        "50k-deep JSON",
        (b'{"type": "event_callback", "event": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", JSON_TYPE),
    ),
]


async def run_count(harness: Harness) -> int:
    async with harness.runtime.store.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(RunRow)) or 0)


async def test_signed_malformed_payloads_get_400_and_start_nothing(bot: Harness) -> None:
    with captured_logs() as logs:
        async with httpx.AsyncClient(base_url=bot.bot_url, timeout=20) as http:
            for name, (body, content_type) in MALFORMED:
                headers = slack_headers(SIGNING_SECRET, body, content_type)
                response = await http.post("/slack/events", content=body, headers=headers)
                assert response.status_code == 400, f"{name}: {response.status_code}"
                assert len(response.content) < 300, name
        counts = await request_counts(bot.bot_url)
        started = await run_count(bot)

    assert started == 0
    assert counts == {("malformed", "400"): len(MALFORMED)}
    crashes = [
        r for r in log_records(logs) if r.get("level") in ("error", "critical") or "exception" in r
    ]
    assert not crashes, crashes[:2]
    assert "Traceback" not in logs.getvalue()


async def test_a_well_formed_signed_command_still_starts_its_run(bot: Harness) -> None:
    # The shape check must not refuse what Slack really sends: the emulator sends Slack's shapes.
    result = await bot.slack.slash_command("alice", "general", "start hello shapes")
    assert result.ok, result
    await bot.root_message("general", "started hello")
    challenge, content_type = as_json(
        {"type": "url_verification", "challenge": "c-42", "token": "t"}
    )
    async with httpx.AsyncClient(base_url=bot.bot_url) as http:
        answer = await http.post(
            "/slack/events",
            content=challenge,
            headers=slack_headers(SIGNING_SECRET, challenge, content_type),
        )
    assert answer.status_code == 200
    assert "c-42" in answer.text
    counts = await request_counts(bot.bot_url)
    assert counts[("command", "200")] == 1
    assert counts[("url_verification", "200")] == 1
