"""``thread: full`` keeps one message per step; a compact run that fails says where on its root."""

from __future__ import annotations

from pathlib import Path

from bot.settings import BUNDLED_WORKFLOWS
from tests.support.harness import running_bot
from tests.support.stores import Database
from tests.thread.shape import card_lines, card_of, is_card, root_status


async def test_full_mode_threads_one_message_per_step_as_before(
    database: Database, tmp_path: Path
) -> None:
    hello = (BUNDLED_WORKFLOWS / "hello.yaml").read_text()
    (tmp_path / "hello.yaml").write_text(
        hello.replace("name: hello\n", "name: hello\nthread: full\n")
    )
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        await harness.slack.slash_command("alice", "general", "hello brave new world")
        root = await harness.root_message("general", "started hello")
        thread = await harness.thread_of("general", root, replies=3)
        texts = [message["text"] for message in thread[1:]]
        assert texts[0].startswith("greet: set")
        assert texts[1] == "Hello, brave new world! (3 words)"
        assert texts[2].startswith("reply: posted")
        assert not any(is_card(m) for m in thread)
        root = harness.slack.message("general", root["ts"]) or {}
        assert root_status(root) == "", "a full thread's root stays as it was posted"


async def test_a_compact_run_that_fails_says_where_on_its_root_and_in_the_thread(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "breaks.yaml").write_text(
        "name: breaks\nsteps:\n"
        "  - id: look\n    set: {po: '{{ input.text }}'}\n"
        "  - id: check\n    fail: 'PO {{ input.text }} does not exist'\n"
    )
    async with running_bot(database, workflows_dir=tmp_path) as harness:
        slack = harness.slack
        await slack.slash_command("alice", "general", "breaks PO-9")
        root = await harness.root_message("general", "started breaks")
        failed = await slack.wait_for(
            lambda: root_status(slack.message("general", root["ts"]) or {}),
            message="the root never showed the failure",
        )
        assert failed == ":warning: Failed at step check"
        replies = slack.thread("general", root["ts"])[1:]
        (note,) = [m for m in replies if not is_card(m)]
        assert "check failed: PO PO-9 does not exist" in note["text"]
        card = await slack.wait_for(
            lambda: (c := card_of(slack, "general", root["ts"])) and "check" in card_lines(c) and c,
            message="the card never showed the failed step",
        )
        lines = card_lines(card)
        assert lines["look"].startswith(":white_check_mark: *look*")
        assert lines["check"].startswith(":x: *check* · PO PO-9 does not exist")
