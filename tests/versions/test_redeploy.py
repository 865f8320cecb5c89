"""Editing a workflow while runs wait: each run finishes on the definition it started with.

Reproduces issue 16 item 4: renaming the step a waiting run sits on, then restarting and
approving, re-leased the signal job again and again and left the run ``waiting``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from tests.versions.support import (
    CARDS,
    approve_step,
    jobs_of,
    open_cards,
    runs,
    wait_runs,
    write,
)

V1 = (
    """
    name: expense
    triggers:
      - command: expense
    steps:
      - id: prepare
        set: {version: 1}
    """
    + approve_step("review")
    + """
      - id: book
        set: {booked: "v1"}
    """
)

# prepare renamed intake, review renamed sign_off, book removed, ledger and notify added.
V2 = (
    """
    name: expense
    triggers:
      - command: expense
    steps:
      - id: intake
        set: {version: 2}
    """
    + approve_step("sign_off")
    + """
      - id: ledger
        set: {booked: "v2"}
      - id: notify
        set: {told: true}
    """
)


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    write(tmp_path, V1)
    async with running_bot(database, workflows_dir=tmp_path) as running:
        yield running


async def test_ten_waiting_runs_finish_on_their_version_after_an_edit_and_a_restart(
    harness: Harness, tmp_path: Path
) -> None:
    slack = harness.slack
    for number in range(10):
        await slack.slash_command("alice", "general", f"expense dinner {number}")
    waiting = await open_cards(harness, 10)
    assert len(await wait_runs(harness, 10, "waiting")) == 10

    write(tmp_path, V2)
    await harness.restart()
    for card in waiting:
        result = await slack.click("carol", card["ts"], "approval:approve", channel=CARDS)
        assert result.ok
    finished = await wait_runs(harness, 10, "succeeded")

    for run in finished:
        assert set(run.context["steps"]) == {"prepare", "review", "book"}, run.id
        assert run.context["steps"]["book"] == {"booked": "v1"}
        signal_jobs = [job for job in await jobs_of(harness, run.id) if job.kind == "signal"]
        assert [(job.status, job.attempt) for job in signal_jobs] == [("done", 1)]

    await slack.slash_command("alice", "general", "expense after the edit")
    (card,) = await open_cards(harness, 1)
    await slack.click("carol", card["ts"], "approval:approve", channel=CARDS)
    await wait_runs(harness, 11, "succeeded")
    newest = (await runs(harness))[-1]
    assert set(newest.context["steps"]) == {"intake", "sign_off", "ledger", "notify"}
    assert len({run.workflow_version for run in await runs(harness)}) == 2


async def test_renaming_the_step_a_run_waits_on_does_not_loop(
    harness: Harness, tmp_path: Path
) -> None:
    slack = harness.slack
    await slack.slash_command("alice", "general", "expense taxi")
    (card,) = await open_cards(harness, 1)
    write(tmp_path, V1.replace("id: review", "id: reviewed"))
    await harness.restart()

    await slack.click("carol", card["ts"], "approval:approve", channel=CARDS)
    (run,) = await wait_runs(harness, 1, "succeeded")
    assert run.context["steps"]["review"]["outcome"] == "approved"
    attempts = {(job.step_id, job.kind): job.attempt for job in await jobs_of(harness, run.id)}
    assert attempts[("review", "signal")] == 1
