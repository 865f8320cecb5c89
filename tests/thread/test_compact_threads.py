"""Compact threads, end to end on the bundled workflows: the root carries the outcome, one
run card lists every step with its audit line, and only what people act on or must read is
a message of its own."""

from __future__ import annotations

from sandbox.standins import USER_IDS
from tests.examples.support import Examples, blocks_text
from tests.thread.shape import card_lines, card_of, is_card, posts_of, root_status

DISCREPANCY = "ACME INV-1042 for 12,400 EUR, PO-7781"  # the PO says 12,000 EUR: 3.3 % over


async def finished_card(examples: Examples, channel: str, root_ts: str, last: str) -> dict:
    """The run card once it shows the run's outcome and ``last``'s line."""
    slack = examples.slack

    def final() -> dict | None:
        card = card_of(slack, channel, root_ts)
        if card is None or " · " not in card["text"].split("\n")[0]:
            return None
        return card if last in card_lines(card) else None

    return await slack.wait_for(final, timeout=15, message="the run card never showed the end")


async def test_hello_is_a_root_with_its_outcome_a_run_card_and_its_own_post(
    examples: Examples,
) -> None:
    slack = examples.slack
    await slack.slash_command("alice", "general", "hello brave new world")
    root = await examples.message_in("general", "started hello")
    await finished_card(examples, "general", root["ts"], "reply")
    run = await examples.finished("hello")

    root = slack.message("general", root["ts"]) or {}
    assert root_status(root) == ":white_check_mark: Done", root
    replies = slack.thread("general", root["ts"])[1:]
    assert len(replies) == 2, [m["text"] for m in replies]
    (card,) = [m for m in replies if is_card(m)]
    (post,) = [m for m in replies if not is_card(m)]
    assert post["text"] == "Hello, brave new world! (3 words)"
    lines = card_lines(card)
    assert list(lines) == ["greet", "reply"]
    assert "audit · set · attempt 1" in lines["greet"] and "sha256:" in lines["greet"]
    assert "audit · post · attempt 1" in lines["reply"]
    assert len(posts_of(slack, run.id)) == 3, "root, run card, its own post"


async def test_an_approved_invoice_threads_card_decision_and_booking(examples: Examples) -> None:
    slack = examples.slack
    await slack.slash_command("alice", "ap-inbox", f"invoice {DISCREPANCY}")
    approval = await examples.message_in("finance-approvals", "INV-1042")
    root = await examples.message_in("ap-inbox", "invoice")
    await examples.thread_says("ap-inbox", root["ts"], "waiting for approval")
    waiting = await slack.wait_for(
        lambda: root_status(slack.message("ap-inbox", root["ts"]) or {}),
        message="the root never showed the wait",
    )
    assert waiting.startswith(":hourglass_flowing_sand: Waiting: waiting for approval")

    await slack.click("dana", approval["ts"], "approval:approve", channel="finance-approvals")
    card = await finished_card(examples, "ap-inbox", root["ts"], "booked")
    run = await examples.finished("invoice")
    assert run.status == "succeeded"

    assert root_status(slack.message("ap-inbox", root["ts"]) or {}) == ":white_check_mark: Done"
    replies = slack.thread("ap-inbox", root["ts"])[1:]
    others = [m["text"] for m in replies if not is_card(m)]
    assert len(replies) == 3, [m["text"] for m in replies]
    assert others[0].startswith("review: approved by") and "booked" in others[1]
    lines = card_lines(card)
    assert list(lines)[:4] == ["fields", "incomplete", "po", "unknown_po"]
    assert lines["incomplete"].startswith(":fast_forward: *incomplete* · skipped")
    assert "approved by" in lines["review"] and "audit · approve" in lines["review"]
    assert "audit · http · attempt 1" in lines["book"]
    assert len(posts_of(slack, run.id)) <= 5, "root, card, approval card, decision, booking"


async def test_a_rejected_invoice_says_who_rejected_it_on_the_root(examples: Examples) -> None:
    slack = examples.slack
    await slack.slash_command("alice", "ap-inbox", f"invoice {DISCREPANCY}")
    approval = await examples.message_in("finance-approvals", "INV-1042")
    root = await examples.message_in("ap-inbox", "invoice")
    await slack.click("dana", approval["ts"], "approval:reject", channel="finance-approvals")
    views = await slack.wait_for(lambda: slack.open_views("dana"), message="no reason modal")
    await slack.submit_view("dana", views[-1]["id"], {"reason": {"reason": "Price too high"}})
    card = await finished_card(examples, "ap-inbox", root["ts"], "review")
    run = await examples.finished("invoice")
    assert run.status == "rejected"

    status = root_status(slack.message("ap-inbox", root["ts"]) or {})
    assert status == f":x: Rejected by <@{USER_IDS['dana']}>"
    replies = slack.thread("ap-inbox", root["ts"])[1:]
    others = [m["text"] for m in replies if not is_card(m)]
    assert len(replies) == 2 and others[0].startswith("review: rejected by")
    assert "Price too high" in others[0]
    assert "book" not in card_lines(card), "nothing after the rejection ran"
    assert f"Rejected by <@{USER_IDS['dana']}>" in blocks_text(card)


async def test_an_inquiry_threads_received_card_and_the_decisions(examples: Examples) -> None:
    slack = examples.slack
    message = await slack.user_posts(
        "alice", "support-inbox", "I was charged twice for our subscription this month"
    )
    routed = await examples.message_in("billing", "charged twice", timeout=30)
    await examples.thread_says("support-inbox", message["ts"], "routed to billing")
    await slack.click("dana", routed["ts"], "route:close", channel="billing")
    card = await finished_card(examples, "support-inbox", message["ts"], "route")
    run = await examples.finished("inquiries")
    assert run.status == "succeeded"

    replies = slack.thread("support-inbox", message["ts"])[1:]
    received = replies[0]
    assert received["text"].startswith("Done · Got it")
    assert root_status(received) == ":white_check_mark: Done"
    others = [m["text"] for m in replies[1:] if not is_card(m)]
    assert len(replies) == 3 and others[0].startswith("route: closed by"), others
    lines = card_lines(card)
    assert "kind" in lines and "classify" in lines["kind"]
    assert "closed by" in lines["route"]
