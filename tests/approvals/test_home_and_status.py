"""App Home and /flow status|approvals: what each person sees of the runs that concern them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.approvals.test_approvals_end_to_end import card_in, settled_card, write_workflow
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_bot(database, workflows_dir=write_workflow(tmp_path)) as running:
        yield running


def home_buttons(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (element["action_id"], element["value"])
        for block in view["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


async def test_app_home_lists_pending_approvals_and_its_buttons_decide(harness: Harness) -> None:
    slack = harness.slack
    await slack.slash_command("alice", "general", "expense taxi 40 EUR")
    card = await card_in(harness)
    await slack.open_home("carol")
    view = await slack.wait_for(lambda: slack.home_view("carol"), message="no home for carol")
    assert "taxi 40 EUR" in str(view["blocks"])
    (approve, gate_id), _reject = home_buttons(view)
    assert approve == "approval:approve"

    await slack.open_home("alice")
    alice_home = await slack.wait_for(lambda: slack.home_view("alice"))
    assert "Nothing is waiting for you" in str(alice_home["blocks"]), "requesters can't approve"
    assert "expense" in str(alice_home["blocks"]), "but they see their open request"

    result = await slack.click("carol", view["id"], "approval:approve", value=gate_id)
    assert result.ok
    await settled_card(harness, card["ts"])

    def refreshed() -> bool:
        home = slack.home_view("carol")
        return bool(home) and "Nothing is waiting for you" in str(home["blocks"])

    await slack.wait_for(refreshed, message="home was not refreshed after the decision")


async def test_status_shows_the_trail_to_requester_and_approvers_only(harness: Harness) -> None:
    slack = harness.slack
    started = await slack.slash_command("alice", "general", "expense hotel")
    run_id = started.body.split("run `")[1].split("`")[0]
    await card_in(harness)

    async def waiting() -> str | None:
        mine = await slack.slash_command("alice", "general", f"status {run_id}")
        return mine.body if "is waiting" in mine.body else None

    body = await slack.wait_for(waiting, message="the run never showed as waiting")
    assert "approval.opened" in body and "approval.requested" in body
    approver = await slack.slash_command("carol", "general", f"status {run_id}")
    assert "approval.opened" in approver.body
    stranger = await slack.slash_command("dave", "general", f"status {run_id}")
    assert "There is no run" in stranger.body
    cancel = await slack.slash_command("dave", "general", f"cancel {run_id}")
    assert "There is no run" in cancel.body

    pending = await slack.slash_command("carol", "general", "approvals")
    assert "1 waiting for you" in pending.body and "hotel" in pending.body
