"""Issue 22's "Done when", with the bundled invoice workflow: installed in two workspaces
through the OAuth redirect, an invoice run in each, each approved and booked at home, and
Beta's people can neither see nor decide Acme's run."""

from __future__ import annotations

from typing import Any

from sandbox.slack import SlackEmulator
from tests.oauth.conftest import Examples, Installed
from tests.oauth.workspaces import TEAM_A, TEAM_B
from workflows.tables import RunRow

INVOICES = {  # each 3-8 % over its purchase order: finance leads must look at it
    TEAM_A: "ACME INV-1042 for 12,400 EUR, PO-7781",
    TEAM_B: "Globex INV-2002 for 5,400 EUR, PO-7782",
}


async def card_in(slack: SlackEmulator, invoice: str) -> dict[str, Any]:
    return await slack.wait_for(
        lambda: next((m for m in slack.messages("finance-approvals") if invoice in str(m)), None),
        message=f"no approval card for {invoice}",
    )


async def invoice_run(installed: Installed, team: str) -> RunRow:
    slack = installed.slack.team(team)
    answer = await slack.slash_command("alice", "ap-inbox", f"invoice {INVOICES[team]}")
    assert answer.ok, answer.body
    await card_in(slack, INVOICES[team].split()[1])
    # The card can show a moment before the run's "waiting" commits.
    run: RunRow = await slack.wait_for(
        lambda: _waiting_in(installed, team), message=f"no waiting run in {team}"
    )
    assert run.workflow == "invoice"
    return run


async def _waiting_in(installed: Installed, team: str) -> RunRow | None:
    (run,) = [r for r in await installed.runs() if r.team_id == team]
    return run if run.status == "waiting" else None


async def status_of(installed: Installed, run_id: str) -> str:
    return {r.id: r.status for r in await installed.runs()}[run_id]


def said(result: Any) -> str:
    return str((result.json() or {}).get("text", ""))


async def test_the_bundled_invoice_runs_and_books_in_each_workspace_apart(
    examples_installed: Examples,
) -> None:
    installed, standins = examples_installed.installed, examples_installed.standins
    assert (await installed.install(TEAM_A, "UACMEALICE")).status_code == 200
    assert (await installed.install(TEAM_B, "UBETABOB")).status_code == 200
    run_a = await invoice_run(installed, TEAM_A)
    run_b = await invoice_run(installed, TEAM_B)
    acme, beta = installed.slack.team(TEAM_A), installed.slack.team(TEAM_B)
    card_a, card_b = await card_in(acme, "INV-1042"), await card_in(beta, "INV-2002")
    assert "INV-2002" not in str(acme.messages("finance-approvals"))
    assert "INV-1042" not in str(beta.messages("finance-approvals"))

    # Beta's admin and Beta's finance lead are told Acme's run does not exist.
    for user in ("alice", "carol"):
        answer = await beta.slash_command(user, "ap-inbox", f"status {run_a.id}")
        assert said(answer) == f"There is no run `{run_a.id}`.", user
    # Beta's finance lead clicks Approve naming Acme's gate: no such approval for Beta.
    gate_a = await installed.gate_of(run_a.id)
    click = await beta.click(
        "carol", card_b["ts"], "approval:approve", value=gate_a.id, channel="finance-approvals"
    )
    assert click.ok
    await beta.wait_for(
        lambda: "This approval no longer exists." in str(beta.ephemerals("carol")),
        message="no refusal",
    )
    assert (await installed.gate_of(run_a.id)).status == "open"
    assert await status_of(installed, run_a.id) == "waiting"
    assert standins.rows("select * from ledger") == [], "nothing booked before an approval"

    # Each workspace's own finance lead approves its own invoice; each is booked.
    for slack, the_card in ((acme, card_a), (beta, card_b)):
        await slack.click("carol", the_card["ts"], "approval:approve", channel="finance-approvals")
    for slack, run in ((acme, run_a), (beta, run_b)):
        await slack.wait_for(
            lambda run=run: _ended(installed, run.id), message=f"{run.id} did not end"
        )
        assert await status_of(installed, run.id) == "succeeded"
    booked = {r["source_run"]: r for r in standins.rows("select * from ledger")}
    assert set(booked) == {run_a.id, run_b.id}
    assert (booked[run_a.id]["invoice_number"], booked[run_a.id]["approved_by"]) == (
        "INV-1042",
        "UACMECAROL",
    )
    assert (booked[run_b.id]["invoice_number"], booked[run_b.id]["approved_by"]) == (
        "INV-2002",
        "UBETACAROL",
    )
    # Each booking is told in its own workspace's #ap-inbox only.
    for slack, mine, theirs in ((acme, "INV-1042", "INV-2002"), (beta, "INV-2002", "INV-1042")):
        said_there = await slack.wait_for(
            lambda slack=slack: (
                _ap_inbox_text(slack) if "ledger entry" in _ap_inbox_text(slack) else None
            ),
            message="no booking post",
        )
        assert mine in said_there and theirs not in said_there


async def _ended(installed: Installed, run_id: str) -> bool:
    return await status_of(installed, run_id) not in ("running", "waiting")


def _ap_inbox_text(slack: SlackEmulator) -> str:
    channel = slack.channel_id("ap-inbox")
    return " ".join(
        m.get("text", "")
        for root in slack.messages("ap-inbox")
        for m in slack.thread(channel, root["ts"])
    )


async def test_an_invoice_posted_in_a_workspaces_ap_inbox_starts_there(
    examples_installed: Examples,
) -> None:
    """The message trigger's ``#ap-inbox`` is each workspace's own channel."""
    installed, standins = examples_installed.installed, examples_installed.standins
    await installed.install(TEAM_A, "UACMEALICE")
    await installed.install(TEAM_B, "UBETABOB")
    beta = installed.slack.team(TEAM_B)
    await beta.user_posts(
        "alice", "ap-inbox", "Invoice INV-2001 from Globex for 5,050 EUR, PO-7782"
    )
    await beta.wait_for(
        lambda: "ledger entry" in _ap_inbox_text(beta), message="Beta's invoice was not booked"
    )
    (run,) = await installed.runs()
    await beta.wait_for(lambda: _ended(installed, run.id), message="the run did not end")
    assert (run.team_id, run.workflow) == (TEAM_B, "invoice")
    assert await status_of(installed, run.id) == "succeeded"
    (entry,) = standins.rows("select * from ledger")
    assert (entry["invoice_number"], entry["source_run"]) == ("INV-2001", run.id)
    assert installed.slack.team(TEAM_A).messages("ap-inbox") == []
