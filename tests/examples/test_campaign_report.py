"""Campaign performance report: two sources checked, summarised, reviewed, published, filed."""

from __future__ import annotations

import datetime as dt
import json

from sandbox.standins import USER_IDS
from tests.examples.support import Examples, blocks_text, buttons
from workflows.schedules import schedule_entries, start_fire
from workflows.steps.connectors import idempotency_label


async def test_the_strategist_approves_and_the_report_is_published_recorded_and_followed_up(
    examples: Examples,
) -> None:
    slack, standins = examples.slack, examples.standins
    await slack.slash_command("alice", "campaigns", "campaign-report acme")

    card = await examples.message_in("campaigns", "ACME campaign report")
    assert buttons(card)[:3] == ["approval:approve", "approval:reject", "approval:changes"]
    shown = blocks_text(card)
    assert "2 data issues" in shown
    assert "social-retargeting" in shown and "140 conversions" in shown and "82 leads" in shown
    assert "display-awareness: missing ads spend" in shown

    await slack.click("erin", card["ts"], "approval:approve", channel="campaigns")

    report = await examples.message_in("client-acme", "ACME campaign report")
    text = blocks_text(report)
    assert "spring-search" in text and "_missing_" in text
    assert f"<@{USER_IDS['erin']}>" in text
    run = await examples.finished("campaign-report")
    assert run.status == "succeeded", run.error
    assert "MKT-1, MKT-2, MKT-3" in run.context["steps"]["done"]["note"]

    (recorded,) = standins.rows("select * from campaign_reports")
    assert recorded["client"] == "acme" and recorded["approved_by"] == USER_IDS["erin"]
    assert json.loads(recorded["totals"])["leads"] == 393
    tickets = standins.rows("select key, summary, labels from tickets order by id")
    assert [t["key"] for t in tickets] == ["MKT-1", "MKT-2", "MKT-3"]
    assert [t["summary"] for t in tickets] == [
        "ACME: check display-awareness",
        "ACME: check social-retargeting",
        "ACME: walk the client through this week's report",
    ]
    # Filed by the ticket step: each carries the label that makes a retry find it again.
    assert [json.loads(t["labels"]) for t in tickets] == [
        ["campaign-report", "acme", idempotency_label(f"{run.id}:followups:{index}")]
        for index in range(3)
    ]


async def test_request_changes_publishes_nothing(examples: Examples) -> None:
    slack, standins = examples.slack, examples.standins
    harness = examples.harness
    # The Monday schedule's fire, as the scheduler would start it (no text: the default client).
    (entry,) = [
        e
        for e in schedule_entries(harness.runtime.workflows.values())
        if e.workflow.name == "campaign-report"
    ]
    now = dt.datetime.now(dt.UTC)
    await start_fire(harness.runtime.store, entry, now, now)
    harness.runtime.engine.wakeup.set()

    card = await examples.message_in("campaigns", "ACME campaign report")
    await slack.click("erin", card["ts"], "approval:changes", channel="campaigns")
    root = await examples.message_in("campaigns", "campaign-report")
    await examples.thread_says("campaigns", root["ts"], "Not published: changes requested")
    run = await examples.finished("campaign-report")
    assert run.status == "succeeded"
    assert run.context["steps"]["review"]["outcome"] == "changes"
    assert slack.messages("client-acme") == []
    assert standins.rows("select * from tickets") == []
    assert standins.rows("select * from campaign_reports") == []
