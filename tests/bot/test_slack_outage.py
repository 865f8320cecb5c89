"""Slack failing for longer than one call's retries does not fail the run: the step retries
durably and the message arrives once."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from sandbox.slack import Fault
from tests.support.harness import running_bot
from tests.support.stores import Database
from workflows.tables import AuditRow, RunRow

FLOW = """
name: notify
triggers: [{command: notify}]
steps:
  - id: tell
    post: {text: "Heads up: {{ input.text }}"}
"""


async def test_sustained_5xx_is_retried_durably_and_posts_once(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "notify.yaml").write_text(FLOW)
    async with running_bot(
        database, workflows_dir=tmp_path, SWITCHBOARD_SLACK_MAX_RETRIES=1
    ) as harness:
        slack = harness.slack
        # Root message fine; then the step's post fails twice per call (1 in-process retry).
        slack.inject_faults("chat.postMessage", [Fault(status=200)] + [Fault.server_error(503)] * 2)
        await slack.slash_command("alice", "general", "notify the server room is warm")

        async def done() -> RunRow | None:
            async with harness.runtime.store.transaction() as session:
                run = (await session.scalars(select(RunRow))).one_or_none()
            return run if run is not None and run.status in ("succeeded", "failed") else None

        run = await slack.wait_for(done, timeout=30, message="the run never finished")
        assert run.status == "succeeded", run.error
        posted = [
            m
            for m in slack.messages("general", include_replies=True)
            if "server room is warm" in m["text"] and m["text"].startswith("Heads up")
        ]
        assert len(posted) == 1
        async with harness.runtime.store.transaction() as session:
            actions = list(await session.scalars(select(AuditRow.action)))
        assert "step.retry" in actions
