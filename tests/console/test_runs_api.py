"""The console's runs API with the Slack rules: a requester sees their runs, approvers
theirs, admins all; nobody else can see or act on a run (404, never 500), and actions are
``workflows.runs`` cancel/retry themselves, so Slack's card and thread change as after
``/flow cancel``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from workflows.tables import AuditRow

from .conftest import ADMIN
from .harness import Console

pytestmark = pytest.mark.slow  # several sign-ins and Slack round trips: 3-12 s under load


async def started(console: Console, user: str, text: str, command: str = "expense") -> str:
    """Start a run from Slack and wait for its approval card (or its end); its id."""
    await console.slack.slash_command(user, "general", f"{command} {text}")

    async def found() -> str | None:
        async with console.runtime.store.read() as session:
            rows = await session.scalars(select(AuditRow).where(AuditRow.action == "run.started"))
            ids = [r.run_id for r in rows.all() if r.actor == console.slack.user_id(user)]
        return ids[-1] if ids else None

    return str(await console.slack.wait_for(found, message="the run did not start"))


async def waiting_card(console: Console, text: str) -> dict[str, Any]:
    def card() -> dict[str, Any] | None:
        messages = console.slack.messages("finance-approvals")
        return next((m for m in messages if text in m.get("text", "") and m.get("blocks")), None)

    return await console.slack.wait_for(card, message="no approval card")


async def listed(http: httpx.AsyncClient, **params: str) -> list[str]:
    answer = await http.get("/console/api/runs", params=params)
    assert answer.status_code == 200, answer.text
    return [run["id"] for run in answer.json()["runs"]]


async def test_who_sees_what_follows_the_slack_rules(console: Console) -> None:
    expense = await started(console, "alice", "team dinner 120 EUR")
    await waiting_card(console, "team dinner")
    ping = await started(console, "dave", "hello", command="ping")
    async with console.signed_in("alice") as alice:
        assert await listed(alice) == [expense]
        assert (await alice.get(f"/console/api/runs/{expense}")).status_code == 200
    async with console.signed_in("bob") as bob:  # asked to decide on alice's expense
        assert await listed(bob) == [expense]
    async with console.signed_in("carol") as carol:  # an admin
        assert (await carol.get("/console/api/me")).json()["admin"] is True
        assert set(await listed(carol)) == {expense, ping}
    async with console.signed_in("dave") as dave:  # neither requester nor approver
        assert await listed(dave) == [ping]
        assert (await dave.get(f"/console/api/runs/{expense}")).status_code == 404
        assert (await dave.get(f"/console/api/runs/{expense}/events")).status_code == 404
        for action in ("cancel", "retry", "remind"):
            refused = await dave.post(f"/console/api/runs/{expense}/{action}", json={})
            assert refused.status_code == 404, refused.text
            assert refused.json()["error"] == f"there is no run {expense}"
        assert (await dave.get("/console/api/runs/nonexistent")).status_code == 404
    assert console.slack.user_id("carol") == ADMIN


async def test_cancel_from_the_console_changes_the_card_like_the_command(
    console: Console,
) -> None:
    run_id = await started(console, "alice", "flights 800 EUR")
    card = await waiting_card(console, "flights")
    async with console.signed_in("alice") as alice:
        page = (await alice.get(f"/console/api/runs/{run_id}")).json()
        assert [s["id"] for s in page["steps"]] == ["note", "review", "book"]
        assert page["steps"][0]["kind"] == "set" and page["steps"][1]["kind"] == "approve"
        assert page["approvals"][0]["status"] == "open"
        assert console.slack.user_id("bob") in page["approvals"][0]["approvers"]
        assert page["definition"]["live"] is True
        assert page["thread"].startswith("https://") and "/archives/" in page["thread"]
        key = {"key": "k" * 16, "reason": "booked elsewhere"}
        done = await alice.post(f"/console/api/runs/{run_id}/cancel", json=key)
        assert done.status_code == 200, done.text
        again = await alice.post(f"/console/api/runs/{run_id}/cancel", json=key)
        assert again.status_code == 409  # the same confirmed action acts once

    def settled() -> dict[str, Any] | None:
        message = console.slack.message(console.slack.channel_id("finance-approvals"), card["ts"])
        return message if message and "Cancelled" in str(message.get("blocks")) else None

    await console.slack.wait_for(settled, message="the card did not say cancelled")
    async with console.runtime.store.read() as session:
        record = await session.scalar(
            select(AuditRow).where(AuditRow.run_id == run_id, AuditRow.action == "run.cancelled")
        )
    assert record is not None and record.actor == console.slack.user_id("alice")
    assert record.detail["via"] == "console" and record.detail["reason"] == "booked elsewhere"


async def test_retry_from_a_step_and_remind_now(console: Console) -> None:
    run_id = await started(console, "alice", "taxi 30 EUR")
    await waiting_card(console, "taxi")
    async with console.signed_in("bob") as bob:
        reminded = await bob.post(f"/console/api/runs/{run_id}/remind", json={})
        assert reminded.status_code == 200, reminded.text

        def reminder() -> dict[str, Any] | None:
            return next(
                (
                    reply
                    for root in console.slack.messages("general")
                    for reply in console.slack.thread("general", root["ts"])
                    if reply.get("text", "").startswith("Reminder:")
                ),
                None,
            )

        await console.slack.wait_for(reminder, message="no reminder in Slack")
        early = await bob.post(f"/console/api/runs/{run_id}/retry", json={"step": "note"})
        assert early.status_code == 409 and "cancel it first" in early.json()["error"]
    async with console.signed_in("carol") as carol:
        assert (await carol.post(f"/console/api/runs/{run_id}/cancel", json={})).status_code == 200
        retried = await carol.post(f"/console/api/runs/{run_id}/retry", json={"step": "review"})
        assert retried.status_code == 200, retried.text
        unknown = await carol.post(f"/console/api/runs/{run_id}/retry", json={"step": "nope"})
        assert unknown.status_code == 409
        await waiting_card(console, "taxi")
        page = (await carol.get(f"/console/api/runs/{run_id}")).json()
        actions = [r["action"] for r in page["audit"]]
        assert "approval.remind_requested" in actions and "run.retried" in actions
        retried_record = next(r for r in page["audit"] if r["action"] == "run.retried")
        assert '"admin": true' in retried_record["detail"]
