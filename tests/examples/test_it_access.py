"""Access requests: policy for the role, the manager approves by DM, provisioning, confirmations."""

from __future__ import annotations

from sandbox.standins import USER_IDS
from tests.examples.support import Examples, blocks_text, buttons


async def test_the_manager_approves_by_dm_and_access_is_provisioned_and_confirmed(
    examples: Examples,
) -> None:
    slack, standins = examples.slack, examples.standins
    await slack.slash_command("alice", "general", "access tableau quarterly churn analysis")

    carol_dm = slack.dm_channel("carol").id
    card = await examples.message_in(carol_dm, "Access to tableau for Alice Archer")
    assert buttons(card)[:2] == ["approval:approve", "approval:reject"]
    assert "quarterly churn analysis" in blocks_text(card)
    assert standins.rows("select * from grants") == []

    await slack.click("carol", card["ts"], "approval:approve", channel=carol_dm)

    root = await examples.message_in("general", "access")
    confirmed = await examples.thread_says("general", root["ts"], "Access to tableau granted")
    assert f"<@{USER_IDS['carol']}>" in blocks_text(confirmed)
    alice_dm = slack.dm_channel("alice").id
    await examples.message_in(alice_dm, "Access to tableau granted")
    run = await examples.finished("it-access")
    assert run.status == "succeeded"

    (grant,) = standins.rows("select * from grants")
    assert (grant["slack_user"], grant["system"], grant["approved_by"]) == (
        USER_IDS["alice"],
        "tableau",
        USER_IDS["carol"],
    )
    assert grant["reason"] == "quarterly churn analysis"
    (grant_call,) = [c for c in standins.calls if c.path == "/iam/grants"]
    assert grant_call.idempotency_key == f"{run.id}:grant"
    mail = await slack.wait_for(lambda: standins.mail, message="no e-mail in the SMTP sink")
    assert mail[0].recipients == ["alice@example.com"]
    assert mail[0].subject == "Access to tableau granted" and "GR-1" in mail[0].body


async def test_a_system_the_role_may_not_use_is_refused_without_asking_anyone(
    examples: Examples,
) -> None:
    slack, standins = examples.slack, examples.standins
    await slack.slash_command("alice", "general", "access aws-prod debugging a report")
    root = await examples.message_in("general", "access")
    await examples.thread_says("general", root["ts"], "Not granted")
    run = await examples.finished("it-access")
    assert run.status == "succeeded"
    assert "engineers only" in run.context["steps"]["not_allowed"]["note"]
    assert slack.messages(slack.dm_channel("carol").id) == []
    assert standins.rows("select * from grants") == [] and standins.mail == []
