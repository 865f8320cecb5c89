"""Vendor invoice approval: a discrepancy waits for finance, a match goes straight through."""

from __future__ import annotations

import json
import time

import httpx

from connectors.webhook_out import sign
from sandbox.standins import USER_IDS
from tests.examples.support import Examples, blocks_text, buttons

DISCREPANCY = "ACME INV-1042 for 12,400 EUR, PO-7781"  # the PO says 12,000 EUR: 3.3 % over


async def test_a_discrepancy_waits_for_finance_then_books_ledger_and_vendor_account(
    examples: Examples,
) -> None:
    slack, standins = examples.slack, examples.standins
    await slack.slash_command("alice", "ap-inbox", f"invoice {DISCREPANCY}")

    card = await examples.message_in("finance-approvals", "INV-1042")
    assert buttons(card)[:2] == ["approval:approve", "approval:reject"]
    shown = blocks_text(card)
    assert "12,400.00 EUR" in shown and "12,000.00 EUR" in shown and "3.3 %" in shown
    root = await examples.message_in("ap-inbox", "invoice")
    await examples.thread_says("ap-inbox", root["ts"], "waiting for approval")
    assert standins.rows("select * from ledger") == [], "nothing is booked before the approval"

    # Alice is no finance lead: she is told so, and the card stays open.
    await slack.click("alice", card["ts"], "approval:approve", channel="finance-approvals")
    await slack.wait_for(
        lambda: any("not one of its approvers" in m["text"] for m in slack.ephemerals("alice")),
        message="alice was not told",
    )
    await slack.click("dana", card["ts"], "approval:approve", channel="finance-approvals")

    # The booking post ("ledger entry"), not the run card, whose "booked" line says "posted".
    booked = await examples.thread_says("ap-inbox", root["ts"], "ledger entry")
    assert "INV-1042" in booked["text"] and "12,400.00 EUR" in booked["text"]
    assert f"<@{USER_IDS['dana']}>" in blocks_text(booked)
    run = await examples.finished("invoice")
    assert run.status == "succeeded"
    # The run card lists every step once its final state is out (after the run's commit).
    thread_text = await slack.wait_for(
        lambda: (
            (t := " ".join(m["text"] for m in slack.thread("ap-inbox", root["ts"])))
            and "vendor_ledger:" in t
            and t
        ),
        message="the run card never listed every step",
    )
    for step in ("fields", "po", "compare", "decide", "review", "book", "vendor_ledger"):
        assert f"{step}:" in thread_text, f"step {step} is not threaded"

    (entry,) = standins.rows("select * from ledger")
    assert (entry["vendor"], entry["invoice_number"], entry["po_number"]) == (
        "ACME",
        "INV-1042",
        "PO-7781",
    )
    assert (entry["amount"], entry["currency"]) == (12400.0, "EUR")
    assert entry["approved_by"] == USER_IDS["dana"] and entry["source_run"] == run.id
    (account,) = standins.rows("select * from vendor_accounts where vendor = 'ACME'")
    assert account["balance"] == 12400.0
    (ledger_call,) = [c for c in standins.calls if c.path == "/erp/ledger"]
    assert ledger_call.idempotency_key == f"{run.id}:book"

    # The same booking sent again (a retried step) is answered from the first and adds nothing.
    async with httpx.AsyncClient() as client:
        again = await client.post(
            f"{standins.env['ERP_URL']}/ledger",
            json=ledger_call.body,
            headers={
                "Authorization": f"Bearer {standins.env['ERP_TOKEN']}",
                "Idempotency-Key": f"{run.id}:book",
            },
        )
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["entry_id"] == entry["id"]
    assert len(standins.rows("select * from ledger")) == 1


async def test_a_matching_invoice_posted_in_ap_inbox_is_booked_without_approval(
    examples: Examples,
) -> None:
    slack, standins = examples.slack, examples.standins
    message = await slack.user_posts(
        "alice", "ap-inbox", "Invoice INV-2001 from Globex for 5,050 EUR, PO-7782"
    )
    booked = await examples.thread_says("ap-inbox", message["ts"], "ledger entry")
    assert "Matches the purchase order" in blocks_text(booked)
    run = await examples.finished("invoice")
    assert run.status == "succeeded"
    assert "review" not in run.context["steps"]
    assert slack.messages("finance-approvals") == [], "a match needs no approval card"
    (entry,) = standins.rows("select * from ledger")
    assert (entry["vendor"], entry["amount"], entry["approved_by"]) == ("Globex", 5050.0, None)
    (account,) = standins.rows("select balance from vendor_accounts where vendor = 'Globex'")
    assert account["balance"] == 5050.0


async def test_a_signed_webhook_delivery_starts_it_in_ap_inbox_and_unknown_pos_fail_clearly(
    examples: Examples,
) -> None:
    body = json.dumps({"text": "Initech INV-77 for 99 USD, PO-9999", "invoice_id": "d-77"}).encode()
    now = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Switchboard-Timestamp": str(now),
        "X-Switchboard-Signature": sign(examples.standins.webhook_secret, now, body),
    }
    async with httpx.AsyncClient(base_url=examples.harness.bot_url) as client:
        response = await client.post("/hooks/invoice", content=body, headers=headers)
    assert response.status_code == 200, response.text
    root = await examples.message_in("ap-inbox", "invoice")
    await examples.thread_says("ap-inbox", root["ts"], "no purchase order PO-9999")
    run = await examples.finished("invoice")
    assert run.status == "failed"
    assert examples.standins.rows("select * from ledger") == []
