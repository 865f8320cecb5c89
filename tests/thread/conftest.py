"""The bundled workflows with their stand-ins, as the examples' tests run them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.settings import BUNDLED_WORKFLOWS
from sandbox.standins import examples_seed, run_standins
from tests.examples.support import Examples
from tests.support.harness import running_bot
from tests.support.stores import Database


@pytest.fixture
async def examples(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Examples]:
    async with run_standins(tmp_path / "standins") as standins:
        for name, value in standins.env.items():
            monkeypatch.setenv(name, value)
        async with running_bot(
            database, workflows_dir=BUNDLED_WORKFLOWS, seed=examples_seed()
        ) as harness:
            assert not harness.runtime.definition_errors, harness.runtime.definition_errors
            yield Examples(harness, standins)
