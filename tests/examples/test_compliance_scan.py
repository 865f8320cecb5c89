"""Compliance monitoring: the scan finds one exception per rule, a reviewer decides, the report
is posted for the auditors and archived, and Switchboard e-mails it through SMTP."""

from __future__ import annotations

from connectors.email import message_id_for
from sandbox.standins import USER_IDS
from tests.examples.support import Examples, blocks_text, buttons


async def test_exceptions_are_reviewed_reported_archived_and_emailed(examples: Examples) -> None:
    slack, standins = examples.slack, examples.standins
    await slack.slash_command("frank", "compliance", "compliance-scan")

    card = await examples.message_in("compliance", "3 payment exceptions to review")
    assert buttons(card)[:3] == ["approval:approve", "approval:reject", "approval:escalate"]
    shown = blocks_text(card)
    for tx, rule in (("TX-9002", "over limit"), ("TX-9004", "weekend"), ("TX-9005", "self")):
        assert tx in shown and rule in shown
    assert "TX-9001" not in shown and "TX-9006" not in shown

    await slack.click("frank", card["ts"], "approval:escalate", channel="compliance")

    report = await examples.message_in("compliance", "Compliance report")
    text = blocks_text(report)
    assert "3* exceptions" in text and "escalate" in text and f"<@{USER_IDS['frank']}>" in text
    assert "AUD-1" in text
    run = await examples.finished("compliance-scan")
    assert run.status == "succeeded"

    (archived,) = standins.rows("select * from compliance_reports")
    assert archived["exceptions"] == 3 and archived["outcome"] == "escalate"
    assert "TX-9004" in archived["body"] and archived["reviewed_by"] == USER_IDS["frank"]
    mail = await slack.wait_for(lambda: standins.mail, message="the auditors got no e-mail")
    (sent,) = mail
    assert sent.sender == "switchboard@example.com" and sent.recipients == ["audit@example.com"]
    assert "AUD-1: 3 exceptions" in sent.subject and "TX-9002" in sent.body
    assert sent.message_id == message_id_for(f"{run.id}:email_auditors", sent.sender)
    assert sent.attachments == ["exceptions-AUD-1.json"]
