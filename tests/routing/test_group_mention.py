"""A route owner's ``group`` is mentioned on the card as Slack mentions a user group
(``<!subteam^S…>``, which notifies its members and renders as @it), not as the text "@it"."""

from __future__ import annotations

from pathlib import Path

from tests.routing.test_routing_end_to_end import first_message, write
from tests.support.harness import running_bot
from tests.support.routing import SEED
from tests.support.stores import Database


async def test_the_owner_group_is_a_real_mention(database: Database, tmp_path: Path) -> None:
    async with running_bot(database, workflows_dir=write(tmp_path), seed=SEED) as harness:
        slack = harness.slack
        await slack.user_posts("alice", "requests", "the app crashes when I log in")
        card = await first_message(harness, "it-help")
        said = str(card["blocks"])
        group_id = next(g.id for g in slack.workspace.usergroups.values() if g.handle == "it")
        assert f"<!subteam^{group_id}>" in said, said
        assert "· @it" not in said
