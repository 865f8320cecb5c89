"""The in-process runner (tests/support/cli.py) sees what the real executable sees.

A command run through ``bot.cli.main`` in the test process must get exactly the given
environment and working directory (nothing of the test process leaks in), and leave the
same exit code and output as ``switchboard`` started as a process.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import switchboard_in_process as switchboard
from tests.support.cli import switchboard_process


def test_in_process_and_executable_agree_and_nothing_leaks_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test process points elsewhere; the command must not see it.
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:9/leaked")
    env = {"PATH": os.environ["PATH"], "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "bad.yaml").write_text("name: bad\nsteps: []\n")
    for args in (["stats"], ["check", str(tmp_path / "wf")], ["purge", "--older-than", "soon"]):
        inside = switchboard(args, cwd=tmp_path, env=env)
        outside = switchboard_process(args, cwd=tmp_path, env=env)
        assert inside == outside, args
        assert "leaked" not in inside.stderr + inside.stdout
    assert os.environ["DATABASE_URL"].endswith("/leaked"), "the test's environment is restored"
    assert Path.cwd() != tmp_path
