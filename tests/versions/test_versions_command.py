"""``switchboard workflows`` as an operator runs it, against a bot that served two versions."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.support.harness import running_bot
from tests.support.stores import Database
from tests.versions.support import approve_step, open_cards, runs, wait_runs, write

SWITCHBOARD = Path(sys.executable).parent / "switchboard"

V1 = """
    name: expense
    triggers:
      - command: expense
    steps:
    """ + approve_step("review")
V2 = (
    V1
    + """
      - id: book
        set: {booked: true}
    """
)


def switchboard_workflows(database: Database, folder: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **database.env(), "SWITCHBOARD_WORKFLOWS": str(folder)}
    return subprocess.run(
        [str(SWITCHBOARD), "workflows"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_lists_each_version_with_its_live_runs(database: Database, tmp_path: Path) -> None:
    write(tmp_path, V1)
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        for text in ("expense one", "expense two"):
            await harness.slack.slash_command("alice", "general", text)
        await open_cards(harness, 2)
        write(tmp_path, V2)
        await harness.restart()
        await harness.slack.slash_command("alice", "general", "expense three")
        await open_cards(harness, 3)
        await wait_runs(harness, 3, "waiting")
        old, _, new = [run.workflow_version for run in await runs(harness)]
        assert old is not None and new is not None and old != new

    listed = await asyncio.to_thread(switchboard_workflows, database, tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split("│")[2].strip(): line for line in listed.stdout.splitlines() if "│" in line}
    assert old[:12] in rows and new[:12] in rows, listed.stdout
    cells = [cell.strip() for cell in rows[new[:12]].split("│")[1:-1]]
    assert cells[0] == "expense" and cells[3] == "1" and cells[4] == "yes"
    cells = [cell.strip() for cell in rows[old[:12]].split("│")[1:-1]]
    assert cells[3] == "2" and cells[4] == ""
    lines = [line for line in listed.stdout.splitlines() if "expense" in line]
    assert new[:12] in lines[0]  # newest first
