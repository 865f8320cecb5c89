"""The ``ticket`` step against the Jira-shaped ticketing stand-in: every answer of the first
try is lost after Jira applied it, and the retries file one ticket, one comment, one move."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.standins import Standins, run_standins
from tests.steps.support import connections_yaml, finished_run, write_folder
from tests.support.harness import running_bot
from tests.support.stores import Database
from workflows.language.steps.connectors import TicketStep
from workflows.steps.connectors import idempotency_label

RETRY = "{attempts: 3, initial: 0.1, jitter: false}"
FILER = f"""\
name: filer
title: Filer
channel: "#general"
triggers: [{{command: filer}}]
steps:
  - id: file
    ticket:
      connection: jira
      project: OPS
      summary: "Printer {{{{ input.text }}}}"
      description: "Filed by run {{{{ run.id }}}}"
      labels: [facilities]
    retry: {RETRY}
  - id: note
    ticket: {{connection: jira, action: comment, issue: "{{{{ steps.file.key }}}}", text: Looking}}
    retry: {RETRY}
  - id: move
    ticket:
      connection: jira
      action: transition
      issue: "{{{{ steps.file.key }}}}"
      transition: In Progress
    retry: {RETRY}
  - id: followups
    ticket:
      connection: jira
      project: OPS
      each: "{{{{ [{{'summary': 'Check toner'}}, {{'summary': 'Order paper'}}] }}}}"
    retry: {RETRY}
"""


@pytest.fixture
async def standins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Standins]:
    async with run_standins(tmp_path / "standins") as running:
        for name, value in running.env.items():
            monkeypatch.setenv(name, value)
        yield running


async def test_retries_after_lost_answers_file_one_ticket_per_key(
    database: Database, tmp_path: Path, standins: Standins
) -> None:
    folder = write_folder(
        tmp_path / "wf", {"filer.yaml": FILER, "connections.yaml": connections_yaml(standins)}
    )
    issue = "/tickets/rest/api/2/issue"
    standins.api.lost_answers.update(
        {issue: 2, f"{issue}/OPS-1/comment": 1, f"{issue}/OPS-1/transitions": 1}
    )
    async with running_bot(database, workflows_dir=folder) as harness:
        assert not harness.runtime.definition_errors, harness.runtime.definition_errors
        await harness.slack.slash_command("alice", "general", "filer on fire")
        run = await finished_run(harness, "filer", timeout=30)

    assert run.status == "succeeded", run.error
    tickets = standins.rows("select key, summary, labels, status from tickets order by id")
    assert [(t["key"], t["summary"]) for t in tickets] == [
        ("OPS-1", "Printer on fire"),
        ("OPS-2", "Check toner"),
        ("OPS-3", "Order paper"),
    ]
    assert json.loads(tickets[0]["labels"]) == [
        "facilities",
        idempotency_label(f"{run.id}:file"),
    ]
    assert standins.api.lost_answers == dict.fromkeys(standins.api.lost_answers, 0)
    assert tickets[0]["status"] == "In Progress"
    assert [c["body"] for c in standins.rows("select body from ticket_comments")] == ["Looking"]
    steps = run.context["steps"]
    assert steps["file"]["existing"] is True  # the retry found the ticket the first try made
    assert [t["key"] for t in steps["followups"]["tickets"]] == ["OPS-2", "OPS-3"]
    for step in ("file", "note", "move", "followups"):
        assert set(steps[step]) <= set(TicketStep.OUTPUT), step
