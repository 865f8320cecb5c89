"""Issue 22 item 1 end to end: install in two workspaces through the OAuth redirect, run the
same approval workflow in each, and show that neither workspace can see or act on the
other's runs; a token expiring mid-run; an uninstall."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from tests.oauth.conftest import Installed
from tests.oauth.workspaces import TEAM_A, TEAM_B
from workflows.tables import InstallationRow, RunRow


async def card(installed: Installed, team: str) -> dict[str, Any]:
    slack = installed.slack.team(team)
    return await slack.wait_for(
        lambda: next(iter(slack.messages("finance-approvals")), None), message="no card"
    )


async def started(installed: Installed, team: str, user: str, text: str) -> RunRow:
    slack = installed.slack.team(team)
    result = await slack.slash_command(user, "general", f"expense {text}")
    assert result.ok, result.body
    await card(installed, team)
    return next(r for r in await installed.runs() if r.team_id == team)


def said(result: Any) -> str:
    return str((result.json() or {}).get("text", ""))


async def test_two_workspaces_install_and_never_see_each_others_runs(installed: Installed) -> None:
    page = await installed.install(TEAM_A, "UACMEALICE")
    assert page.status_code == 200, page.text
    assert (await installed.install(TEAM_B, "UBETABOB")).status_code == 200
    assert await installed.installed_teams() == {TEAM_A, TEAM_B}
    # Each installation's token is its own workspace's (auth.test per token).
    async with installed.runtime.store.read() as session:
        rows = (await session.scalars(select(InstallationRow))).all()
    api = AsyncWebClient(base_url=installed.slack.api_url)
    for row in rows:
        assert (await api.auth_test(token=row.data["bot_token"]))["team_id"] == row.team_id

    run_a = await started(installed, TEAM_A, "alice", "team dinner 120 EUR")
    run_b = await started(installed, TEAM_B, "bob", "taxi 30 EUR")
    assert (run_a.team_id, run_b.team_id) == (TEAM_A, TEAM_B)
    card_a, card_b = await card(installed, TEAM_A), await card(installed, TEAM_B)
    assert "team dinner" in card_a["text"] and "taxi" in card_b["text"]  # each posted at home

    beta = installed.slack.team(TEAM_B)
    # By command: Beta's admin (who may see every run of Beta) is told A's run does not exist.
    for verb in ("status", "cancel", "retry"):
        answer = await beta.slash_command("alice", "general", f"{verb} {run_a.id}")
        assert said(answer) == f"There is no run `{run_a.id}`.", verb
    approvals = await beta.slash_command("carol", "general", "approvals")
    assert "team dinner" not in str(approvals.body) and "taxi" in str(approvals.body)
    # By click: a Beta approver's click that names Acme's gate finds no such approval.
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
    # App Home: Beta's approver sees Beta's request only.
    await beta.open_home("carol")
    home = await beta.wait_for(lambda: beta.home_view("carol"), message="no App Home")
    assert "taxi" in str(home["blocks"]) and "team dinner" not in str(home["blocks"])

    # Acme's own approver decides Acme's run; Beta's stays waiting.
    acme = installed.slack.team(TEAM_A)
    await acme.click("carol", card_a["ts"], "approval:approve", channel="finance-approvals")
    await acme.wait_for(
        lambda: _status_is(installed, run_a.id, "succeeded"), message="Acme's run did not end"
    )
    assert {r.id: r.status for r in await installed.runs()}[run_b.id] == "waiting"


async def _status_is(installed: Installed, run_id: str, status: str) -> bool:
    return {r.id: r.status for r in await installed.runs()}.get(run_id) == status


async def test_a_token_that_expires_mid_run_is_refreshed(short_tokens: Installed) -> None:
    installed = short_tokens
    await installed.install(TEAM_A, "UACMEALICE")
    first = (await installed_bots(installed))[TEAM_A]
    run = await started(installed, TEAM_A, "alice", "hotel 300 EUR")
    acme = installed.slack.team(TEAM_A)
    api = AsyncWebClient(base_url=installed.slack.api_url)
    await acme.wait_for(lambda: _refused(api, first), message="the token did not expire")
    the_card = await card(installed, TEAM_A)
    await acme.click("carol", the_card["ts"], "approval:approve", channel="finance-approvals")
    await acme.wait_for(
        lambda: _status_is(installed, run.id, "succeeded"), message="the run did not end"
    )
    assert "refresh_token" in installed.slack.exchanges  # the expired token was exchanged
    # The card was updated after the expiry, with a fresh token: no buttons left.
    settled = acme.message(acme.channel_id("finance-approvals"), the_card["ts"])
    assert settled is not None and "actions" not in {b["type"] for b in settled["blocks"]}
    # Only the test's own probe met the expired token: the product never posted with it.
    refused = [c.method for c in acme.api_calls() if c.error in ("token_expired", "invalid_auth")]
    assert refused == ["auth.test"]


async def installed_bots(installed: Installed) -> dict[str | None, str]:
    async with installed.runtime.store.read() as session:
        rows = (await session.scalars(select(InstallationRow))).all()
    return {row.team_id: str(row.data["bot_token"]) for row in rows}


async def _refused(api: AsyncWebClient, token: str) -> bool:
    try:
        await api.auth_test(token=token)
    except SlackApiError as exc:
        return exc.response.get("error") == "token_expired"
    return False


async def test_an_uninstall_removes_the_workspace_and_its_requests_are_refused(
    installed: Installed,
) -> None:
    await installed.install(TEAM_A, "UACMEALICE")
    await installed.install(TEAM_B, "UBETABOB")
    await installed.slack.uninstall(TEAM_A)  # tokens_revoked, then app_uninstalled
    assert await installed.installed_teams() == {TEAM_B}
    acme = installed.slack.team(TEAM_A)
    refused = await acme.slash_command("alice", "general", "expense x")
    assert refused.ok  # Bolt answers, then says so through the response_url:
    await acme.wait_for(
        lambda: "reinstall this app" in str(acme.ephemerals("alice")), message="not told"
    )
    assert await installed.runs() == []
    run_b = await started(installed, TEAM_B, "bob", "train 80 EUR")  # Beta is unaffected
    assert run_b.team_id == TEAM_B


async def test_the_console_shows_a_workspace_its_own_runs_only(installed: Installed) -> None:
    await installed.install(TEAM_A, "UACMEALICE")
    await installed.install(TEAM_B, "UBETABOB")
    run_a = await started(installed, TEAM_A, "alice", "team dinner 120 EUR")
    run_b = await started(installed, TEAM_B, "bob", "taxi 30 EUR")
    beta_admin = await installed.console_as(TEAM_B, "UBETAALICE")
    try:
        listed = (await beta_admin.get("/console/api/runs")).json()
        assert [r["id"] for r in listed["runs"]] == [run_b.id]
        assert (await beta_admin.get(f"/console/api/runs/{run_a.id}")).status_code == 404
        cancel = await beta_admin.post(f"/console/api/runs/{run_a.id}/cancel", json={})
        assert cancel.status_code == 404
        assert (await beta_admin.get(f"/console/api/runs/{run_b.id}")).status_code == 200
    finally:
        await beta_admin.aclose()
    assert {r.id: r.status for r in await installed.runs()}[run_a.id] == "waiting"
