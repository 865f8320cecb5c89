"""allowed_starters: users, @groups and #channels decide who may start a workflow."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from tests.support.harness import running_bot
from tests.support.stores import Database
from workflows.tables import RunRow

GUARDED = """
name: payout
triggers: [{command: payout}]
allowed_starters: ["@finance-leads", "#ap-inbox"]
steps:
  - id: note
    set: {ok: true}
"""


async def test_only_allowed_people_and_channels_start_it(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "payout.yaml").write_text(GUARDED)
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        refused = await slack.slash_command("dave", "general", "payout 10")
        assert "can't start" in refused.body and "@finance-leads" in refused.body
        by_group = await slack.slash_command("carol", "general", "payout 20")
        assert "Started" in by_group.body
        in_channel = await slack.slash_command("dave", "ap-inbox", "payout 30")
        assert "Started" in in_channel.body
        async with harness.runtime.store.transaction() as session:
            runs = await session.scalar(select(func.count()).select_from(RunRow))
        assert runs == 2, "the refused request changed nothing"
