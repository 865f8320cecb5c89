"""allowed_starters: users, @groups and #channel members decide who may start a workflow."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from sandbox.slack import WorkspaceSeed
from sandbox.slack.seeds import ChannelSeed
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


def ap_inbox_of(*members: str) -> WorkspaceSeed:
    seed = WorkspaceSeed.demo()
    channels = [c for c in seed.channels if c.name != "ap-inbox"]
    channels.append(ChannelSeed(name="ap-inbox", members=list(members)))
    return seed.model_copy(update={"channels": channels})


async def test_only_allowed_people_start_it(database: Database, tmp_path: Path) -> None:
    (tmp_path / "payout.yaml").write_text(GUARDED)
    seed = ap_inbox_of("alice")
    async with running_bot(database, workflows_dir=tmp_path, seed=seed) as harness:
        slack = harness.slack
        refused = await slack.slash_command("dave", "general", "payout 10")
        assert "can't start" in refused.body and "@finance-leads" in refused.body
        by_group = await slack.slash_command("carol", "general", "payout 20")
        assert "Started" in by_group.body
        by_membership = await slack.slash_command("alice", "general", "payout 30")
        assert "Started" in by_membership.body
        typed_there = await slack.slash_command("dave", "ap-inbox", "payout 40")
        assert "can't start" in typed_there.body, "typing in the channel is not membership"
        async with harness.runtime.store.transaction() as session:
            runs = await session.scalar(select(func.count()).select_from(RunRow))
        assert runs == 2, "the refused requests changed nothing"
