"""Fixtures of the Workflow Builder tests: the bot with their workflows, and a Workflow Builder."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.slack.functions import WorkflowBuilder
from tests.functions.support import BROKEN, EXPENSE, manifest
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    (tmp_path / "expense.yaml").write_text(textwrap.dedent(EXPENSE))
    (tmp_path / "broken.yaml").write_text(textwrap.dedent(BROKEN))
    async with running_bot(database, workflows_dir=tmp_path) as running:
        yield running


@pytest.fixture
def builder(harness: Harness) -> WorkflowBuilder:
    return WorkflowBuilder(harness.slack, manifest())
