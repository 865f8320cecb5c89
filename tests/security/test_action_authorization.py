"""Who may act on a routed request: `/flow route`, Claim, Close, Reassign and triage picks.

Only the people a request was routed to, the triage channel's members and admins may; anyone
else who learns a run id (or replays a card's payload) is refused with a reason, and nothing
changes: no assignment update, no labelled example, no audit record.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from bot.route_access import REFUSAL
from sandbox.slack import ChannelSeed, UserGroupSeed, UserSeed, WorkspaceSeed, signed_headers
from sandbox.slack.payloads import VERIFICATION_TOKEN, view_submission
from tests.routing.test_routing_end_to_end import first_message, write
from tests.support.harness import SIGNING_SECRET, Harness, running_bot
from tests.support.stores import Database
from workflows.tables import AssignmentRow, AuditRow, ExampleRow, RunRow

ADMIN = "U0ADMIN01"
SEED = WorkspaceSeed(
    users=[UserSeed(name=n) for n in ("alice", "bob", "carol", "dave", "eve")]
    + [UserSeed(name="root", id=ADMIN)],
    channels=[
        ChannelSeed(name="general"),
        ChannelSeed(name="requests"),
        ChannelSeed(name="billing", members=["carol"]),
        ChannelSeed(name="it-help", members=["bob"]),
        ChannelSeed(name="triage", members=["dave"]),
        ChannelSeed(name="leads", members=["dave"]),
    ],
    usergroups=[UserGroupSeed(handle="it", users=["bob"])],
)


@pytest.fixture
async def shadowed(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    folder = write(tmp_path, shadow=True)
    async with running_bot(
        database, workflows_dir=folder, seed=SEED, SWITCHBOARD_ADMINS=ADMIN
    ) as running:
        yield running


async def shadow_run(harness: Harness, text: str) -> RunRow:
    await harness.slack.user_posts("alice", "requests", text)

    async def waiting() -> RunRow | None:
        async with harness.runtime.store.transaction() as session:
            runs = (await session.scalars(select(RunRow))).all()
        return runs[-1] if runs and runs[-1].status == "waiting" else None

    run: RunRow = await harness.slack.wait_for(waiting, timeout=30, message="no shadowed run")
    return run


async def assignment(harness: Harness, run_id: str) -> AssignmentRow:
    async with harness.runtime.store.transaction() as session:
        row: AssignmentRow = (
            await session.scalars(select(AssignmentRow).where(AssignmentRow.run_id == run_id))
        ).one()
    return row


async def count(harness: Harness, model: Any, *where: Any) -> int:
    async with harness.runtime.store.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def assert_nothing_changed(harness: Harness, before: AssignmentRow) -> None:
    after = await assignment(harness, before.run_id)
    assert (after.status, after.label, after.claimed_by) == (
        before.status,
        before.label,
        before.claimed_by,
    )
    assert await count(harness, ExampleRow) == 0, "a refused action stored a labelled example"
    eve = harness.slack.user_id("eve")
    assert await count(harness, AuditRow, AuditRow.actor == eve) == 0, "eve's action was audited"


async def test_flow_route_by_an_unrelated_user_is_refused_and_changes_nothing(
    shadowed: Harness,
) -> None:
    run = await shadow_run(shadowed, "please refund my last invoice")
    before = await assignment(shadowed, run.id)
    answer = await shadowed.slack.slash_command("eve", "general", f"route {run.id} tech")
    assert answer.ok and REFUSAL in answer.body
    await assert_nothing_changed(shadowed, before)


@pytest.mark.parametrize("who", ["dave", "root"])
async def test_flow_route_by_triage_member_or_admin_is_recorded(
    shadowed: Harness, who: str
) -> None:
    run = await shadow_run(shadowed, "please refund my last invoice")
    answer = await shadowed.slack.slash_command(who, "general", f"route {run.id} billing")
    assert "Routed to billing" in answer.body
    example = (await _examples(shadowed))[0]
    assert (example.label, example.created_by) == ("billing", shadowed.slack.user_id(who))


async def test_flow_route_by_the_predicted_owner_is_recorded(shadowed: Harness) -> None:
    run = await shadow_run(shadowed, "please refund my last invoice")
    before = await assignment(shadowed, run.id)
    assert before.owner_id == "#billing", "the classifier's prediction this test relies on"
    answer = await shadowed.slack.slash_command("carol", "general", f"route {run.id} billing")
    assert "Routed to billing" in answer.body
    assert await count(shadowed, ExampleRow) == 1


async def _examples(harness: Harness) -> list[ExampleRow]:
    async with harness.runtime.store.transaction() as session:
        return list((await session.scalars(select(ExampleRow))).all())


TRIAGED = "my invoice page shows an error"  # with min_confidence 0.99: to #triage
OWNED = "I was charged twice for my invoice"  # with min_confidence 0.3: to #billing


@pytest.fixture
async def routed(
    database: Database, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    folder = write(tmp_path, min_confidence=0.99 if request.param == "triage" else 0.3)
    async with running_bot(
        database, workflows_dir=folder, seed=SEED, SWITCHBOARD_ADMINS=ADMIN
    ) as running:
        yield running


async def signed_interaction(harness: Harness, payload: dict[str, Any]) -> httpx.Response:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = signed_headers(SIGNING_SECRET, body) | {
        "Content-Type": "application/x-www-form-urlencoded"
    }
    async with httpx.AsyncClient() as client:
        return await client.post(f"{harness.bot_url}/slack/events", content=body, headers=headers)


async def card(harness: Harness, channel: str) -> tuple[dict[str, Any], AssignmentRow]:
    text = TRIAGED if channel == "triage" else OWNED
    await harness.slack.user_posts("alice", "requests", text)
    posted = await first_message(harness, channel)
    async with harness.runtime.store.transaction() as session:
        row = (await session.scalars(select(AssignmentRow))).one()
    return posted, row


def button(card: dict[str, Any], action_id: str) -> dict[str, Any]:
    return next(
        e
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"].startswith(action_id)
    )


async def forged_click(
    harness: Harness, user: str, card: dict[str, Any], element: dict[str, Any], channel: str
) -> httpx.Response:
    """A signed click on a card's button as ``user`` sends it, whether or not they see the card."""
    slack = harness.slack
    where = slack.workspace.new_response_url(slack.user_id(user), slack.channel_id(channel))
    payload = {
        "type": "block_actions",
        "team": {"id": slack.workspace.team_id, "domain": slack.workspace.team_domain},
        "user": {"id": slack.user_id(user), "name": user, "team_id": slack.workspace.team_id},
        "api_app_id": slack.workspace.app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": f"1.{slack.workspace.team_id}.forged",
        "container": {"type": "message", "message_ts": card["ts"]},
        "channel": {"id": slack.channel_id(channel), "name": channel},
        "message": card,
        "response_url": f"{slack.base_url}/response/{where.id}",
        "actions": [
            {
                "type": "button",
                "action_id": element["action_id"],
                "block_id": "x",
                "value": element["value"],
                "action_ts": "1.0",
            }
        ],
    }
    return await signed_interaction(harness, payload)


@pytest.mark.parametrize(
    ("routed", "channel", "action_id"),
    [
        ("triage", "triage", "route:pick"),
        ("triage", "triage", "route:close"),
        ("triage", "triage", "route:reassign"),
        ("billing", "billing", "route:claim"),
        ("billing", "billing", "route:close"),
    ],
    indirect=["routed"],
)
async def test_card_buttons_refuse_people_it_was_not_routed_to(
    routed: Harness, channel: str, action_id: str
) -> None:
    posted, before = await card(routed, channel)
    reply = await forged_click(routed, "eve", posted, button(posted, action_id), channel)
    assert reply.status_code == 200
    await routed.slack.wait_for(
        lambda: any(REFUSAL in e["text"] for e in routed.slack.ephemerals("eve")),
        timeout=10,
        message="eve was not told why",
    )
    await assert_nothing_changed(routed, before)
    assert routed.slack.open_views("eve") == [], "no reassign modal for eve"


@pytest.mark.parametrize(
    ("routed", "who"), [("billing", "carol"), ("billing", "root")], indirect=["routed"]
)
async def test_owner_and_admin_may_claim(routed: Harness, who: str) -> None:
    posted, before = await card(routed, "billing")
    reply = await forged_click(routed, who, posted, button(posted, "route:claim"), "billing")
    assert reply.status_code == 200
    after = await assignment(routed, before.run_id)
    assert (after.status, after.claimed_by) == ("claimed", routed.slack.user_id(who))


@pytest.mark.parametrize("routed", ["triage"], indirect=True)
async def test_triage_member_may_pick_a_team(routed: Harness) -> None:
    posted, _ = await card(routed, "triage")
    reply = await forged_click(routed, "dave", posted, button(posted, "route:pick"), "triage")
    assert reply.status_code == 200
    assert await count(routed, ExampleRow) == 1


@pytest.mark.parametrize("routed", ["triage"], indirect=True)
async def test_forged_reassign_submission_is_refused(routed: Harness) -> None:
    slack = routed.slack
    posted, before = await card(routed, "triage")
    reassign = button(posted, "route:reassign")
    await slack.click(
        "dave", posted["ts"], reassign["action_id"], value=reassign["value"], channel="triage"
    )
    modal = await slack.wait_for(lambda: next(iter(slack.open_views("dave")), None), timeout=10)
    view = slack.workspace.views[modal["id"]]
    payload = view_submission(slack.workspace, slack.user("eve"), view, "1.T.forged")
    payload["view"]["state"] = {
        "values": {
            "label": {"label": {"type": "static_select", "selected_option": {"value": "tech"}}}
        }
    }
    reply = await signed_interaction(routed, payload)
    assert reply.status_code == 200 and REFUSAL in reply.text
    await assert_nothing_changed(routed, before)
