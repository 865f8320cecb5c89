"""Hot reload in ``switchboard demo --workflows DIR`` (issue 16 item 5): an edit is the next
run's version and the page's tour follows it, a broken edit keeps the last good one, with
no restart. The demo runs on its SQLite file, so this runs on SQLite only."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.sandbox.page_harness import RunningDemo, running_demo
from tests.versions.support import write
from tests.versions.test_hot_reload import BROKEN, V1, V2, reload_warnings
from workflows.tables import RunRow

pytestmark = pytest.mark.slow  # two 2 s polls of the folder


async def next_run_steps(demo: RunningDemo, count: int) -> set[str]:
    await demo.slack.slash_command("alice", "general", "hello")

    async def finished() -> list[RunRow] | None:
        async with demo.demo.runtime.store.read() as session:
            query = select(RunRow).where(RunRow.status == "succeeded").order_by(RunRow.created_at)
            found = list(await session.scalars(query))
        return found if len(found) >= count else None

    runs: list[RunRow] = await demo.slack.wait_for(finished, message=f"run {count} not done")
    return set(runs[-1].context["steps"])


async def test_the_demo_follows_an_edit_and_keeps_the_last_good_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.reload")
    folder = tmp_path / "workflows"
    folder.mkdir()
    write(folder, V1, "hello.yaml")
    async with running_demo(tmp_path, folder) as demo:
        assert await next_run_steps(demo, 1) == {"greet"}
        write(folder, V2, "hello.yaml")  # the demo polls the folder every 2 s
        await demo.slack.wait_for(
            lambda: "greet, wave" in demo.demo.page.walkthrough[0].expect,
            message="the tour did not follow the edit",
        )
        assert await next_run_steps(demo, 2) == {"greet", "wave"}

        path = write(folder, BROKEN, "hello.yaml")
        (line,) = await demo.slack.wait_for(
            lambda: reload_warnings(caplog), message="the broken edit was not logged"
        )
        assert f"{path}:11:" in line and "stays live" in line
        assert await next_run_steps(demo, 3) == {"greet", "wave"}
