"""Fixtures of the console's tests: the bot with its console and an approval workflow."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.stores import Database

from .harness import Console, running_console

EXPENSE = """
name: expense
title: Expense approval
triggers:
  - command: expense
steps:
  - id: note
    set: {noted: true}
  - id: review
    approve:
      channel: "#finance-approvals"
      approvers: ["@finance"]
      not_requester: true
      title: "Expense: {{ input.text }}"
      summary: "{{ input.user }} asks for {{ input.text }}"
  - id: book
    set: {booked: true}
"""


PING = """
name: ping
triggers:
  - command: ping
steps:
  - id: answer
    set: {pong: true}
"""
ADMIN = "U0SB000003"
"""carol: an admin in these tests (alice requests, bob approves, dave is nobody's)."""


def write_workflow(folder: Path) -> Path:
    (folder / "expense.yaml").write_text(textwrap.dedent(EXPENSE))
    (folder / "ping.yaml").write_text(textwrap.dedent(PING))
    return folder


@pytest.fixture
async def console(database: Database, tmp_path: Path) -> AsyncIterator[Console]:
    async with running_console(
        database, workflows_dir=write_workflow(tmp_path), SWITCHBOARD_ADMINS=ADMIN
    ) as running:
        yield running
