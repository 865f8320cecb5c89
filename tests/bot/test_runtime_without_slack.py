"""The composition root without a bot token: the engine gets the null chat, not None."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.runtime import build_runtime
from bot.settings import load_settings
from workflows.null_chat import NullChat


async def test_no_bot_token_means_a_null_chat_and_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}", SLACK_BOT_TOKEN=""
    )
    with caplog.at_level(logging.WARNING, logger="bot.runtime"):
        runtime = build_runtime(settings, run_workers=0)
    try:
        assert isinstance(runtime.engine.chat, NullChat)
        assert "SLACK_BOT_TOKEN is not set" in caplog.text
    finally:
        await runtime.store.dispose()
