"""A run whose pinned definition cannot run fails once, in its thread and audit, never loops."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.support.harness import running_bot
from tests.support.stores import Database
from tests.versions.support import (
    CARDS,
    approve_step,
    audit_of,
    jobs_of,
    open_cards,
    wait_runs,
    write,
)
from workflows.tables import WorkflowVersionRow

APPROVE_ONLY = """
    name: expense
    triggers:
      - command: expense
    steps:
    """ + approve_step("review")

WITH_CALL = (
    """
    name: expense
    triggers:
      - command: expense
    steps:
    """
    + approve_step("review")
    + """
      - id: book
        call:
          function: "sb_versions_ledger:book"
    """
)


async def test_a_call_whose_function_was_removed_fails_once_with_a_clear_reason(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    module = code / "sb_versions_ledger.py"
    module.write_text("def book() -> dict[str, bool]:\n    return {'booked': True}\n")
    monkeypatch.syspath_prepend(str(code))
    folder = tmp_path / "flows"
    folder.mkdir()
    write(folder, WITH_CALL)
    async with running_bot(database, workflows_dir=folder) as harness:
        slack = harness.slack
        await slack.slash_command("alice", "general", "expense hotel")
        (card,) = await open_cards(harness, 1)

        # The redeploy removes the function; the waiting run's version still calls it.
        module.write_text("def other() -> dict[str, bool]:\n    return {}\n")
        sys.modules.pop("sb_versions_ledger", None)
        importlib.invalidate_caches()
        await harness.restart()
        await slack.click("carol", card["ts"], "approval:approve", channel=CARDS)

        (run,) = await wait_runs(harness, 1, "failed")
        assert run.error is not None and "cannot load sb_versions_ledger:book" in run.error
        root = await harness.root_message("general", "expense")
        thread = await harness.thread_of("general", root, replies=2)
        failures = [m for m in thread if "cannot load sb_versions_ledger:book" in m["text"]]
        assert len(failures) == 1
        book_jobs = [job for job in await jobs_of(harness, run.id) if job.step_id == "book"]
        assert [(job.status, job.attempt) for job in book_jobs] == [("failed", 1)]
        records = await audit_of(harness, run.id)
        (failed,) = [record for record in records if record.action == "run.failed"]
        assert "cannot load sb_versions_ledger:book" in failed.detail["error"]
        assert failed.step_id == "book"


async def test_a_version_this_release_cannot_read_fails_once_instead_of_looping(
    database: Database, tmp_path: Path
) -> None:
    write(tmp_path, APPROVE_ONLY)
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        await slack.slash_command("alice", "general", "expense train")
        (card,) = await open_cards(harness, 1)
        (run,) = await wait_runs(harness, 1, "waiting")
        # As if a later release dropped a field the stored definition uses.
        async with harness.runtime.store.transaction() as session:
            await session.execute(
                update(WorkflowVersionRow)
                .where(WorkflowVersionRow.digest == run.workflow_version)
                .values(definition={"name": "expense", "retired_field": True})
            )
        write(tmp_path, APPROVE_ONLY + "\n      - id: book\n        set: {booked: true}\n")
        await harness.restart()
        assert [s.id for s in harness.runtime.workflows["expense"].steps] == ["review", "book"]
        await slack.click("carol", card["ts"], "approval:approve", channel=CARDS)

        (run,) = await wait_runs(harness, 1, "failed")
        assert run.error is not None and "is no longer valid in this release" in run.error
        root = await harness.root_message("general", "expense")
        thread = await harness.thread_of("general", root, replies=2)
        assert len([m for m in thread if "no longer valid in this release" in m["text"]]) == 1
        signal_jobs = [job for job in await jobs_of(harness, run.id) if job.kind == "signal"]
        assert [(job.status, job.attempt) for job in signal_jobs] == [("failed", 1)]
        (failed,) = [r for r in await audit_of(harness, run.id) if r.action == "run.failed"]
        assert run.workflow_version and failed.detail["version"] == run.workflow_version[:12]
