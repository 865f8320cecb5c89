"""Customer inquiries: classified, prioritised from the CRM, escalated, routed, SLA escalation."""

from __future__ import annotations

from tests.examples.support import Examples, buttons


async def test_an_enterprise_billing_question_is_escalated_in_crm_routed_and_its_sla_escalated(
    examples: Examples,
) -> None:
    slack, standins = examples.slack, examples.standins
    message = await slack.user_posts(
        "alice", "support-inbox", "I was charged twice for our subscription this month"
    )
    card = await examples.message_in("billing", "charged twice", timeout=30)
    assert buttons(card) == ["route:claim", "route:reassign", "route:close"]
    assert slack.messages("it-help") == [] and slack.messages("sales") == []
    await examples.thread_says("support-inbox", message["ts"], "routed to billing")

    run = await examples.run_of("inquiries")
    assert run.context["steps"]["kind"]["label"] == "billing"
    priority = run.context["steps"]["priority"]
    assert (priority["customer"], priority["tier"], priority["level"]) == (
        "Acme Corp",
        "enterprise",
        "P1",
    )
    (escalation,) = standins.rows("select * from escalations")
    assert (escalation["customer"], escalation["priority"], escalation["category"]) == (
        "C-1001",
        "P1",
        "billing",
    )

    # Nobody answers: hours go by and the SLA clocks run out.
    assert await examples.fast_forward_timers() > 0
    notice = await examples.message_in("support-leads", "SLA breached")
    assert "billing" in notice["text"]
    await examples.thread_says("support-inbox", message["ts"], "SLA breached")

    await slack.click("dana", card["ts"], "route:close", channel="billing")
    await examples.thread_says("support-inbox", message["ts"], "closed by")
    run = await examples.finished("inquiries")
    assert run.status == "succeeded"


async def test_a_known_customer_asking_sales_is_routed_to_sales_without_escalation(
    examples: Examples,
) -> None:
    slack, standins = examples.slack, examples.standins
    await slack.user_posts(
        "bob", "support-inbox", "Can we get a quote for 50 more seats on the enterprise plan?"
    )
    card = await examples.message_in("sales", "50 more seats", timeout=30)
    assert buttons(card)[0] == "route:claim"
    await slack.click("erin", card["ts"], "route:claim", channel="sales")
    run = await examples.run_of("inquiries")
    assert run.context["steps"]["priority"]["level"] == "P2"
    assert run.context["steps"]["crm_escalation"] == {"skipped": True}
    assert standins.rows("select * from escalations") == []
