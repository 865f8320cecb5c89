"""``#channel`` in allowed_starters means its members; ``in:`` means where a run may start.

Driven through the emulator and the real bot; ``switchboard check`` runs through the CLI's
entry point in-process (tests/support/cli.py).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sandbox.slack import WorkspaceSeed
from sandbox.slack.seeds import ChannelSeed
from tests.support.cli import Ran, switchboard
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows.tables import RunRow

MEMBERS = """
name: payout
triggers: [{command: payout}]
allowed_starters: ["#ap-inbox"]
steps:
  - id: note
    set: {ok: true}
"""
PLACED = """
name: invoice
triggers: [{command: invoice}]
in: ["#ap-inbox"]
steps:
  - id: note
    set: {ok: true}
"""


def seed() -> WorkspaceSeed:
    workspace = WorkspaceSeed.demo()
    channels = [c for c in workspace.channels if c.name != "ap-inbox"]
    channels.append(ChannelSeed(name="ap-inbox", members=["alice", "carol", "dave"]))
    return workspace.model_copy(update={"channels": channels})


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    (tmp_path / "payout.yaml").write_text(MEMBERS)
    (tmp_path / "invoice.yaml").write_text(PLACED)
    async with running_bot(database, workflows_dir=tmp_path, seed=seed(), run_workers=0) as bot:
        yield bot


async def run_count(harness: Harness) -> int:
    async with harness.runtime.store.read() as session:
        return int(await session.scalar(select(func.count()).select_from(RunRow)) or 0)


async def test_a_channel_member_may_start_from_anywhere(harness: Harness) -> None:
    slack = harness.slack
    in_general = await slack.slash_command("alice", "general", "payout 10")
    assert "Started" in in_general.body, in_general.body
    in_a_dm = await slack.slash_command("carol", None, "payout 20")
    assert "Started" in in_a_dm.body, in_a_dm.body
    assert await run_count(harness) == 2


async def test_a_non_member_typing_in_that_channel_may_not(harness: Harness) -> None:
    # bob is not in #ap-inbox; where he types does not make him one of its members.
    refused = await harness.slack.slash_command("bob", "ap-inbox", "payout 30")
    assert "can't start" in refused.body and "#ap-inbox" in refused.body
    assert await run_count(harness) == 0


async def test_in_limits_where_a_workflow_starts(harness: Harness) -> None:
    slack = harness.slack
    elsewhere = await slack.slash_command("carol", "general", "invoice 5")
    assert "only in #ap-inbox" in elsewhere.body, elsewhere.body
    assert await run_count(harness) == 0
    there = await slack.slash_command("bob", "ap-inbox", "invoice 6")
    assert "Started" in there.body, there.body
    assert await run_count(harness) == 1


def check(folder: Path) -> Ran:
    env = {
        **os.environ,
        "SWITCHBOARD_WORKFLOWS": str(folder),
        "DATABASE_URL": f"sqlite+aiosqlite:///{folder}/unused.db",
    }
    return switchboard(["check", str(folder)], cwd=folder, env=env)


def test_check_warns_about_a_channel_in_allowed_starters(tmp_path: Path) -> None:
    (tmp_path / "payout.yaml").write_text(MEMBERS)
    result = check(tmp_path)
    assert result.returncode == 0, "a warning, not an error: " + result.stdout + result.stderr
    assert (
        f"{tmp_path / 'payout.yaml'}:4: allowed_starters: warning: #ap-inbox now means the "
        "members of #ap-inbox, wherever they type; to allow only commands typed in "
        '#ap-inbox, write in: ["#ap-inbox"]' in result.stdout
    ), result.stdout
    assert "1 workflow ok, 0 errors, 1 warning" in result.stdout


def test_check_is_quiet_about_groups_users_and_in(tmp_path: Path) -> None:
    (tmp_path / "invoice.yaml").write_text(PLACED)
    (tmp_path / "grouped.yaml").write_text(
        'name: grouped\nallowed_starters: ["@finance-leads", "U0123"]\n'
        "steps: [{id: s, set: {a: 1}}]\n"
    )
    result = check(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stdout
    assert result.stdout.splitlines()[-1] == "2 workflows ok, 0 errors"
