"""The bundled invoice workflow: a discrepancy finance rejects ends ``rejected``, and the
stats behind ``/flow stats`` and digests count it as a rejection, not a success."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.settings import BUNDLED_WORKFLOWS
from sandbox.standins import examples_seed, run_standins
from tests.examples.support import Examples
from tests.support.harness import running_bot
from tests.support.stores import Database
from workflows import stats

DISCREPANCY = "ACME INV-1042 for 12,400 EUR, PO-7781"  # the PO says 12,000 EUR


@pytest.fixture
async def examples(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Examples]:
    async with run_standins(tmp_path / "standins") as standins:
        for name, value in standins.env.items():
            monkeypatch.setenv(name, value)
        async with running_bot(
            database, workflows_dir=BUNDLED_WORKFLOWS, seed=examples_seed()
        ) as harness:
            yield Examples(harness, standins)


async def test_a_rejected_invoice_ends_rejected_and_is_counted_so(examples: Examples) -> None:
    slack, standins = examples.slack, examples.standins
    await slack.slash_command("alice", "ap-inbox", f"invoice {DISCREPANCY}")
    card = await examples.message_in("finance-approvals", "INV-1042")
    await slack.click("dana", card["ts"], "approval:reject", channel="finance-approvals")
    views = await slack.wait_for(lambda: slack.open_views("dana"), message="no reason modal")
    await slack.submit_view("dana", views[-1]["id"], {"reason": {"reason": "Price too high"}})

    run = await examples.finished("invoice")
    assert run.status == "rejected"
    assert standins.rows("select * from ledger") == [], "a rejected invoice is not booked"
    now = examples.harness.runtime.engine.clock.now()
    numbers = await stats.collect(
        examples.harness.runtime.store,
        start=now - timedelta(days=1),
        end=now + timedelta(minutes=1),
        now=now,
        workflow="invoice",
    )
    assert numbers.outcomes == {"rejected": 1} and numbers.rejections == 1
    assert stats.summary(numbers)["workflows"][0]["outcomes"] == "1 rejected"
