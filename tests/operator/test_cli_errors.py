"""Issue 18 item 6: commands against a missing or unmigrated database, or without Slack
credentials, fail at once in one line that names the fix, and create nothing.

Every case runs ``switchboard`` in an empty directory with a clean environment (no
``.env``, no ``DATABASE_URL``): what an operator sees on a fresh clone. Most run through
the CLI's entry point in-process (tests/support/cli.py); a few of each kind run the real
executable, so a fresh process is seen to fail the same way.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from tests.support.cli import Ran, switchboard_process
from tests.support.cli import switchboard as switchboard_in_process  # a process, see there
from tests.support.stores import PG_URL, pg_available

NOT_READY = 3  # distinct from 1 ("audit trail tampered") and 2 (a bad setting)
TOKENS = {"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": "test-signing-secret"}

DATABASE_COMMANDS = [
    ["stats"],
    ["audit", "verify"],
    ["audit", "export"],
    ["cancel", "abc123"],
    ["retry", "abc123"],
    ["report", "shadow", "anything"],
    ["purge", "--older-than", "90d"],
    ["purge", "--older-than", "90d", "--dry-run"],
    ["forget", "--user", "U12345"],
    ["serve", "--port", "0"],
    ["worker"],
]


def clean_env(**extra: str) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "SWITCHBOARD_", "DATABASE_", "OPENAI_"))
    }
    return keep | extra


Runner = Callable[..., Ran]


def switchboard(cwd: Path, *args: str, **env: str) -> Ran:
    return switchboard_in_process(list(args), cwd=cwd, env=clean_env(**env))


def executable(cwd: Path, *args: str, **env: str) -> Ran:
    return switchboard_process(list(args), cwd=cwd, env=clean_env(**env))


def one_line(result: Ran) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("command", "run"),
    [(command, switchboard) for command in DATABASE_COMMANDS] + [(["stats"], executable)],
    ids=[" ".join(c) for c in DATABASE_COMMANDS] + ["stats-executable"],
)
def test_a_missing_database_is_one_line_with_the_fix_and_no_file(
    tmp_path: Path, command: list[str], run: Runner
) -> None:
    result = run(tmp_path, *command, **TOKENS)
    line = one_line(result)
    assert result.returncode == NOT_READY, result.stderr
    assert "switchboard db upgrade" in line and "does not exist" in line
    assert list(tmp_path.iterdir()) == [], "nothing may be created"


def test_an_empty_sqlite_file_is_not_migrated_and_left_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "switchboard.db").write_bytes(b"")
    for command in (["stats"], ["audit", "verify"], ["purge", "--older-than", "1d"]):
        result = switchboard(tmp_path, *command)
        line = one_line(result)
        assert result.returncode == NOT_READY and "not migrated" in line, result.stderr
        assert "switchboard db upgrade" in line
    assert [p.name for p in tmp_path.iterdir()] == ["switchboard.db"]
    assert (tmp_path / "switchboard.db").stat().st_size == 0


async def test_an_unmigrated_postgres_schema_is_one_line(tmp_path: Path) -> None:
    reason = await pg_available()
    if reason:
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        env = {"DATABASE_URL": PG_URL, "SWITCHBOARD_DB_SCHEMA": schema}
        for command in (["stats"], ["audit", "verify"]):
            result = await asyncio.to_thread(switchboard, tmp_path, *command, **env)
            assert result.returncode == NOT_READY, result.stderr
            assert "not migrated" in one_line(result)
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", schema
        )
        assert tables == 0, "the check creates nothing"
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://nobody@127.0.0.1:9/none"
    result = switchboard(tmp_path, "stats", DATABASE_URL=url)
    assert result.returncode == NOT_READY, result.stderr
    assert "cannot reach the database" in one_line(result)


def test_a_migrated_database_still_works(tmp_path: Path) -> None:
    assert switchboard(tmp_path, "db", "upgrade").returncode == 0
    result = switchboard(tmp_path, "audit", "verify")
    assert result.returncode == 0 and "intact: 0 records" in result.stdout, result.stderr


@pytest.mark.parametrize(
    ("command", "env", "setting", "run"),
    [
        (["serve", "--port", "0"], {}, "SLACK_BOT_TOKEN", switchboard),
        (
            ["serve", "--port", "0"],
            {"SLACK_BOT_TOKEN": "xoxb-1"},
            "SLACK_SIGNING_SECRET",
            switchboard,
        ),
        (["worker"], {}, "SLACK_BOT_TOKEN", switchboard),
        (["serve", "--port", "0"], {}, "SLACK_BOT_TOKEN", executable),
    ],
    ids=["serve-token", "serve-signing-secret", "worker-token", "serve-token-executable"],
)
def test_long_running_modes_stop_at_once_naming_the_missing_setting(
    tmp_path: Path, command: list[str], env: dict[str, str], setting: str, run: Runner
) -> None:
    started = time.monotonic()
    result = run(tmp_path, *command, **env)
    assert time.monotonic() - started < 15, "no retrying slack.com first"
    assert result.returncode == 2, result.stderr
    assert setting in one_line(result)
    assert list(tmp_path.iterdir()) == []
