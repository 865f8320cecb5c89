"""A workflow's ``inputs:`` as a start form, end to end through the Slack emulator."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows.tables import RunRow

PURCHASE = """
name: purchase
title: Purchase request
description: Ask for something to be bought.
triggers:
  - command: purchase
inputs:
  - {id: vendor, label: Vendor, required: true, max_length: 40}
  - {id: amount, type: money, required: true, currency: EUR, min: 1, max: 50000}
  - {id: quantity, type: number, default: 1, min: 1}
  - {id: needed_by, type: date}
  - {id: category, type: select, options: [hardware, {value: saas, label: Software}]}
  - {id: owner, type: user}
  - {id: why, type: long_text}
steps:
  - id: decide
    set:
      big: "{{ input.amount > 1000 }}"
      total: "{{ input.amount * input.quantity }}"
      vendor: "{{ input.vendor }}"
"""


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    (tmp_path / "purchase.yaml").write_text(textwrap.dedent(PURCHASE))
    async with running_bot(database, workflows_dir=tmp_path) as running:
        yield running


async def _runs(harness: Harness) -> list[RunRow]:
    async with harness.runtime.store.read() as session:
        return list((await session.scalars(select(RunRow))).all())


async def test_flow_without_text_opens_the_form_and_starts_a_typed_run(harness: Harness) -> None:
    slack = harness.slack
    answer = await slack.slash_command("alice", "general", "purchase")
    assert answer.ok
    views = await slack.wait_for(lambda: slack.open_views("alice"), message="no form")
    form = views[-1]
    assert form["callback_id"] == "flow_form"
    blocks = {b["block_id"]: b for b in form["blocks"] if b["type"] == "input"}
    assert list(blocks) == [
        "vendor",
        "amount",
        "quantity",
        "needed_by",
        "category",
        "owner",
        "why",
    ]
    assert blocks["vendor"]["optional"] is False and blocks["owner"]["optional"] is True
    assert blocks["quantity"]["element"]["type"] == "number_input"
    assert blocks["quantity"]["element"]["initial_value"] == "1"
    assert blocks["needed_by"]["element"]["type"] == "datepicker"
    assert blocks["owner"]["element"]["type"] == "users_select"
    assert blocks["why"]["element"]["multiline"] is True
    options = blocks["category"]["element"]["options"]
    assert [o["text"]["text"] for o in options] == ["hardware", "Software"]

    carol = slack.user_id("carol")
    values = {
        "vendor": "ACME",
        "amount": "1,250.50",
        "quantity": "2",
        "needed_by": "2026-12-24",
        "category": "saas",
        "owner": carol,
    }
    result = await slack.submit_view("alice", form["id"], values)
    assert result.outcome == "closed"
    await slack.wait_for(lambda: _done(harness), message="run did not finish")
    (run,) = await _runs(harness)
    inputs = run.context["input"]
    assert inputs["amount"] == {"amount": 1250.5, "currency": "EUR"}
    assert inputs["quantity"] == 2 and inputs["needed_by"] == "2026-12-24"
    assert inputs["category"] == "saas" and inputs["owner"] == carol and inputs["why"] is None
    assert inputs["user"] == slack.user_id("alice")
    assert run.channel_id == slack.channel_id("general")
    assert run.context["steps"]["decide"] == {
        "big": True,
        "total": {"amount": 2501.0, "currency": "EUR"},
        "vendor": "ACME",
    }


async def _done(harness: Harness) -> bool:
    runs = await _runs(harness)
    return bool(runs) and all(run.status == "succeeded" for run in runs)


async def test_invalid_input_is_shown_under_its_field_and_starts_nothing(
    harness: Harness,
) -> None:
    slack = harness.slack
    await slack.slash_command("alice", "general", "purchase")
    (form,) = await slack.wait_for(lambda: slack.open_views("alice"), message="no form")
    bad = {"vendor": "ACME", "amount": "lots", "quantity": "0", "needed_by": "2026-12-24"}
    result = await slack.submit_view("alice", form["id"], bad)
    assert result.outcome == "errors"
    errors = slack.view_errors(form["id"])
    assert errors == {
        "amount": "Not an amount (e.g. 1,250.00 EUR).",
        "quantity": "At least 1, please.",
    }
    over = await slack.submit_view("alice", form["id"], {"amount": "90,000", "quantity": "1"})
    assert over.outcome == "errors"
    assert slack.view_errors(form["id"]) == {"amount": "At most 50,000, please."}
    dollars = await slack.submit_view("alice", form["id"], {"amount": "$12"})
    assert slack.view_errors(form["id"]) == {"amount": "Please give the amount in EUR."}
    assert dollars.outcome == "errors"
    assert await _runs(harness) == []
    ok = await slack.submit_view("alice", form["id"], {"amount": "12"})
    assert ok.outcome == "closed"
    await slack.wait_for(lambda: _done(harness), message="run did not finish")


async def test_text_that_says_everything_required_starts_at_once(harness: Harness) -> None:
    slack = harness.slack
    answer = await slack.slash_command("alice", "general", "purchase vendor: ACME, 1,200 EUR saas")
    assert "Started *Purchase request*" in str(answer.json())
    assert slack.open_views("alice") == []
    await slack.wait_for(lambda: _done(harness), message="run did not finish")
    (run,) = await _runs(harness)
    inputs = run.context["input"]
    assert inputs["vendor"] == "ACME" and inputs["category"] == "saas"
    assert inputs["amount"] == {"amount": 1200.0, "currency": "EUR"}
    assert inputs["text"] == "vendor: ACME, 1,200 EUR saas" and inputs["owner"] is None


async def test_text_fills_what_it_can_and_the_form_asks_for_the_rest(harness: Harness) -> None:
    slack = harness.slack
    answer = await slack.slash_command("alice", "general", "purchase a laptop for 300 EUR")
    assert answer.ok and "Started" not in str(answer.json())
    (form,) = await slack.wait_for(lambda: slack.open_views("alice"), message="no form")
    blocks = {b.get("block_id"): b for b in form["blocks"]}
    assert blocks["amount"]["element"]["initial_value"] == "300 EUR"
    assert "initial_value" not in blocks["vendor"]["element"]
    assert "filled in what I could" in str(form["blocks"][0])
    result = await slack.submit_view("alice", form["id"], {"vendor": "Dell"})
    assert result.outcome == "closed"
    await slack.wait_for(lambda: _done(harness), message="run did not finish")
    (run,) = await _runs(harness)
    inputs = run.context["input"]
    assert inputs["vendor"] == "Dell" and inputs["text"] == "a laptop for 300 EUR"
    assert inputs["amount"] == {"amount": 300.0, "currency": "EUR"}


async def test_app_home_start_button_opens_the_form(harness: Harness) -> None:
    slack = harness.slack
    await slack.open_home("bob")
    home = await slack.wait_for(lambda: slack.home_view("bob"), message="no home for bob")
    starts = [
        b["accessory"]
        for b in home["blocks"]
        if b.get("accessory", {}).get("action_id") == "form:start"
    ]
    assert [s["value"] for s in starts] == ["purchase"]
    await slack.click("bob", home["id"], "form:start")
    (form,) = await slack.wait_for(lambda: slack.open_views("bob"), message="no form")
    assert form["callback_id"] == "flow_form"
    result = await slack.submit_view("bob", form["id"], {"vendor": "Initech", "amount": "99"})
    assert result.outcome == "closed"
    await slack.wait_for(lambda: _done(harness), message="run did not finish")
    (run,) = await _runs(harness)
    assert run.requester == slack.user_id("bob")
    assert run.context["input"]["vendor"] == "Initech"
    assert run.context["input"]["quantity"] == 1  # the default, submitted as Slack submits it


async def test_a_form_opened_before_a_restart_starts_once_after_it(harness: Harness) -> None:
    slack = harness.slack
    await slack.slash_command("alice", "general", "purchase")
    (form,) = await slack.wait_for(lambda: slack.open_views("alice"), message="no form")
    await harness.restart()  # the form's state is the view itself: nothing kept in memory
    first = await slack.submit_view("alice", form["id"], {"vendor": "ACME", "amount": "5"})
    assert first.outcome == "closed"
    # Slack delivering the same submission again (a retry) starts nothing new.
    replay = await slack._deliverer.send_interaction(first.payload)
    assert replay.status == 200
    await slack.wait_for(lambda: _done(harness), message="run did not finish")
    assert len(await _runs(harness)) == 1
