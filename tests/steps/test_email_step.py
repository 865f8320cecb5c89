"""The ``email`` step end to end: Switchboard sends through the SMTP sink, exactly once per
step execution, even when the step is retried after the server took the message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.email import message_id_for
from sandbox.slack import ApiCall, Fault
from sandbox.standins import Standins, run_standins
from tests.steps.support import FROM, connections_yaml, finished_run, write_folder
from tests.support.harness import running_bot
from tests.support.stores import Database
from workflows.language.steps.connectors import EmailStep

MAILER = """\
name: mailer
title: Mailer
channel: "#general"
thread: full  # the step's own thread note marks the moment to fail at
triggers: [{command: mailer}]
steps:
  - id: scan
    quiet: true
    set: {rows: "{{ [{'id': 'TX-1', 'amount': 12000}] }}"}
  - id: notify
    email:
      connection: mail
      to: "{{ input.text }}"
      cc: [audit@example.com]
      subject: "Report {{ run.id }}"
      text: "{{ steps.scan.rows | length }} exceptions; first {{ steps.scan.rows[0].id }}"
      attachments:
        - filename: exceptions.json
          content: "{{ steps.scan.rows }}"
          content_type: application/json
  - id: done
    end: "mailed {{ steps.notify.message_id }}"
"""


@pytest.fixture
async def standins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Standins]:
    async with run_standins(tmp_path / "standins") as running:
        for name, value in running.env.items():
            monkeypatch.setenv(name, value)
        yield running


async def test_email_step_sends_one_message_with_its_attachment(
    database: Database, tmp_path: Path, standins: Standins
) -> None:
    folder = write_folder(
        tmp_path / "wf", {"mailer.yaml": MAILER, "connections.yaml": connections_yaml(standins)}
    )
    async with running_bot(database, workflows_dir=folder) as harness:
        assert not harness.runtime.definition_errors, harness.runtime.definition_errors
        await harness.slack.slash_command("alice", "general", "mailer ap@example.com")
        run = await finished_run(harness, "mailer")

    assert run.status == "succeeded", run.error
    (mail,) = standins.mail
    assert mail.sender == FROM and mail.recipients == ["ap@example.com", "audit@example.com"]
    assert mail.subject == f"Report {run.id}" and "1 exceptions; first TX-1" in mail.body
    assert mail.attachments == ["exceptions.json"]
    assert mail.message_id == message_id_for(f"{run.id}:notify", FROM)
    assert run.context["steps"]["notify"]["already_sent"] is False
    assert set(run.context["steps"]["notify"]) <= set(EmailStep.OUTPUT)


async def test_a_step_retried_after_the_server_took_the_message_sends_no_second_one(
    database: Database, tmp_path: Path, standins: Standins
) -> None:
    folder = write_folder(
        tmp_path / "wf", {"mailer.yaml": MAILER, "connections.yaml": connections_yaml(standins)}
    )
    async with running_bot(
        database, workflows_dir=folder, SWITCHBOARD_SLACK_MAX_RETRIES=0
    ) as harness:
        slack = harness.slack

        def fail_the_note_after_the_root(call: ApiCall) -> None:
            # The root message is the run's first post; the next is the e-mail step's thread
            # note, posted after the server took the message: failing it (a retryable chat
            # error) retries the step.
            if call.method == "chat.postMessage" and call.ok and "thread_ts" not in call.args:
                slack.inject_faults("chat.postMessage", [Fault.server_error(503)])
                slack.on_api_call(None)

        slack.on_api_call(fail_the_note_after_the_root)
        await slack.slash_command("alice", "general", "mailer ap@example.com")
        run = await finished_run(harness, "mailer", timeout=30)

    assert run.status == "succeeded", run.error
    notes = [c for c in slack.api_calls("chat.postMessage") if "thread_ts" in c.args]
    assert [c.ok for c in notes][:2] == [False, True], "the step was not retried: proves nothing"
    assert len(standins.mail) == 1, [m.message_id for m in standins.mail]
    assert run.context["steps"]["notify"]["already_sent"] is True
