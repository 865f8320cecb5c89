"""What every CLI command module shares: one-line failures and the settings read once.

``bot/cli.py`` registers the commands; the larger ones live in their own modules
(``run_commands``, ``retention_commands``, ``versions_table``, ``workflow_test_cli``),
and all of them fail the same way: one line on stderr and exit 2.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer

from bot.settings import ConfigurationError, Settings, load_settings
from workflows.loader import DefinitionError, LoadResult

T = TypeVar("T")


def fail(message: str, code: int = 2) -> None:
    """Print ``message`` as one line on stderr and stop with ``code``."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    """The settings, or one line naming the bad one."""
    try:
        return load_settings()
    except ConfigurationError as exc:
        fail(str(exc))
        raise  # unreachable; for type checkers


def counted(n: int, word: str) -> str:
    """``1 workflow``, ``2 workflows``: counts people read, in their grammar."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def cli_actor() -> str:
    """Who acts in the audit trail when an operator runs a command: ``cli:<login>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "cli:unknown"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def workspace_errors(result: LoadResult, config: Settings) -> list[DefinitionError]:
    """``check --workspace``: names in definitions looked up in the configured Slack."""
    from bot.notifier import make_web_client
    from bot.people import DirectoryError, SlackDirectory
    from bot.people import workspace_errors as unresolved

    token = config.slack_bot_token.get_secret_value()
    if not token:
        fail("check --workspace needs SLACK_BOT_TOKEN (and SLACK_API_URL for a stand-in Slack)")
    client = make_web_client(token, config.slack_api_url, max_retries=1)
    try:
        return run(unresolved(result, SlackDirectory(client)))
    except DirectoryError as exc:
        fail(f"check --workspace: {exc}")
        raise  # unreachable; for type checkers
