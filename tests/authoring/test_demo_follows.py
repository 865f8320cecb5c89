"""``switchboard demo`` follows your workflows: ``--workflows DIR``, ``--reset``, the banner.

The tour (console and page) is built from the workflows loaded, and rebuilt when a
definition changes; ``--reset`` starts from an empty SQLite file; the banner names the
workflows folder and the database file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from sandbox.demo import WALKTHROUGH, Demo, DemoError, demo_settings, walkthrough_text
from sandbox.demo_tips import LIST_TIP

BASE = "http://127.0.0.1:9"  # never served: these tests build the demo without serving it

EXPENSE = """\
name: expense
title: Expense approval
description: "A card in #finance-approvals for Dana; approved, it is booked."
in: ["#finance-approvals"]
triggers:
  - command: expense
steps:
  - id: done
    post: {text: "ok"}
tests:
  - name: dinner
    input: {text: "640 EUR team dinner"}
"""

TRIP = """\
name: trip
triggers:
  - command: trip
steps:
  - id: ask
    set: {x: 1}
  - id: done
    end: true
"""


def _demo(tmp_path: Path, workflows: Path | None) -> Demo:
    return Demo(demo_settings(BASE, tmp_path / "demo.db", workflows), BASE)


async def test_the_tour_follows_your_workflows_and_their_edits(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "expense.yaml").write_text(EXPENSE)
    demo = _demo(tmp_path, folder)
    try:
        first = demo.tips[0]
        assert (first.title, first.user, first.channel) == (
            "Expense approval",
            "alice",
            "finance-approvals",
        )
        assert first.text == "/flow expense 640 EUR team dinner"
        assert first.expect.startswith("A card in #finance-approvals")
        assert demo.tips == (first, LIST_TIP) == demo.page.walkthrough
        text = walkthrough_text("http://x/", demo.tips, demo.about())
        assert "/flow expense 640 EUR team dinner" in text and "/flow invoice" not in text
        await demo.prepare_database()
        (folder / "trip.yaml").write_text(TRIP)
        assert demo.runtime.watcher is not None
        await demo.runtime.watcher.reload()
        added = demo.page.walkthrough[-1]
        assert (added.title, added.channel, added.text) == ("trip", "general", "/flow trip")
        assert added.expect == "Runs trip: ask, done."
    finally:
        await demo.stop()


@pytest.mark.slow  # builds the whole demo (bot, emulator, stand-ins): 2.5-5.5 s
async def test_the_bundled_examples_keep_their_hand_written_tour(tmp_path: Path) -> None:
    demo = _demo(tmp_path, None)
    try:
        assert demo.tips == WALKTHROUGH == demo.page.walkthrough
    finally:
        await demo.stop()


@pytest.mark.slow  # builds the whole demo (bot, emulator, stand-ins): 2.5-5.5 s
async def test_reset_empties_the_file_and_the_banner_names_it(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    with sqlite3.connect(database) as db:
        db.execute("create table leftover (x)")
    demo = _demo(tmp_path, None)
    try:
        await demo.prepare_database(reset=True)
        with sqlite3.connect(database) as db:
            tables = {row[0] for row in db.execute("select name from sqlite_master")}
        assert "leftover" not in tables and "runs" in tables
        about = demo.about()
        assert about[1] == f"Database: {database.resolve()} (--reset starts empty)"
        assert about[0].startswith("Workflows: ") and "loaded" in about[0]
    finally:
        await demo.stop()


async def test_reset_of_a_database_that_is_not_a_file_is_refused(tmp_path: Path) -> None:
    settings = demo_settings(
        BASE, None, None, DATABASE_URL="postgresql+asyncpg://demo:demo@127.0.0.1:9/demo"
    )
    demo = Demo(settings, BASE)
    try:
        with pytest.raises(DemoError, match="--reset empties only a SQLite file"):
            await demo.prepare_database(reset=True)
        assert demo.about()[1] == "Database: DATABASE_URL (not a file)"
    finally:
        await demo.stop()


def test_a_missing_workflows_folder_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = CliRunner().invoke(app, ["demo", "--port", "0", "--workflows", str(missing)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"--workflows {missing}: no such folder"
