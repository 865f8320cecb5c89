"""Issue 16 item 2: escalation chains. ``escalation:`` on an approve step is an ordered list
of levels (approvers, timeout, optional reminders) and a final action; the chain escalates
level by level, audits each level and always ends. The old ``on_timeout: {escalate_to}``
is a one-level chain; ``check`` refuses a chain that could not end or has nobody to ask.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from sqlalchemy import select

from bot.settings import BUNDLED_TEMPLATES
from sandbox.slack import ChannelSeed, UserSeed, WorkspaceSeed
from tests.approvals.test_approvals_end_to_end import buttons, card_in
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows import audit
from workflows.loader import CheckContext, load_folder
from workflows.tables import AuditRow, GateRow, RunRow

SEED = WorkspaceSeed(
    users=[UserSeed(name=n, id=f"U0{n.upper()}") for n in ("req", "manager", "director", "vp")],
    channels=[ChannelSeed(name="general"), ChannelSeed(name="approvals")],
)
CHAIN = """
name: spend
triggers: [{command: spend}]
steps:
  - id: review
    approve:
      channel: "#approvals"
      approvers: [U0MANAGER]
      title: "Spend: {{ input.text }}"
      timeout: 1s
      escalation:
        levels:
          - {approvers: [U0DIRECTOR], timeout: 2s, remind_every: 1s}
          - {approvers: [U0VP], timeout: 1s}
        then: {goto: lapsed}
  - id: book
    set: {booked: true}
  - id: lapsed
    set: {lapsed: true}
"""
LEGACY = """
name: legacy
triggers: [{command: legacy}]
steps:
  - id: review
    approve:
      channel: "#approvals"
      approvers: [U0MANAGER]
      timeout: 1s
      on_timeout: {escalate_to: [U0DIRECTOR], timeout: 1s}
  - id: book
    set: {booked: true}
"""


async def the_run(harness: Harness, status: str) -> RunRow:
    async def finished() -> RunRow | None:
        async with harness.runtime.store.read() as session:
            run = (await session.scalars(select(RunRow))).one()
        return run if run.status == status else None

    return await harness.slack.wait_for(finished, timeout=20, message=f"run never {status}")


async def actions(harness: Harness) -> list[AuditRow]:
    async with harness.runtime.store.read() as session:
        return list((await session.scalars(select(AuditRow).order_by(AuditRow.seq))).all())


def escalations(rows: list[AuditRow]) -> list[tuple[int, list[str]]]:
    """(level, people added) of each gate escalation (the step's own record adds no one)."""
    gate_records = [r.detail for r in rows if r.action == "approval.escalated"]
    return [(d["level"], d["added"]) for d in gate_records if "added" in d]


async def test_three_level_chain_escalates_level_by_level_and_ends_in_its_final_action(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "spend.yaml").write_text(textwrap.dedent(CHAIN))
    async with running_bot(database, workflows_dir=tmp_path, seed=SEED) as harness:
        slack = harness.slack
        await slack.slash_command("req", "general", "spend 40k on servers")
        card = await card_in(harness, "approvals")
        assert "U0MANAGER" in str(card["blocks"]) and "U0VP" not in str(card["blocks"])

        async def at_level(level: int) -> GateRow | None:
            async with harness.runtime.store.read() as session:
                gate = (await session.scalars(select(GateRow))).one()
            return gate if gate.escalation_level == level else None

        director = await slack.wait_for(lambda: at_level(1), timeout=10, message="no level 1")
        assert director.approvers == ["U0DIRECTOR", "U0MANAGER"]

        def director_reminded() -> bool:
            dm = slack.messages(slack.dm_channel("director").id)
            return any("Reminder" in message["text"] for message in dm)

        await slack.wait_for(director_reminded, timeout=10, message="director not reminded")
        vp = await slack.wait_for(lambda: at_level(2), timeout=10, message="no level 2")
        assert vp.approvers == ["U0DIRECTOR", "U0MANAGER", "U0VP"]

        run = await the_run(harness, "succeeded")
        assert run.context["steps"]["review"]["outcome"] == "timed_out"
        assert run.context["steps"]["lapsed"] == {"lapsed": True}
        assert "book" not in run.context["steps"]
        rows = await actions(harness)
        assert escalations(rows) == [(1, ["U0DIRECTOR"]), (2, ["U0VP"])]
        resolved = [r.detail["outcome"] for r in rows if r.action == "approval.resolved"]
        assert resolved == ["timed_out"]
        final = slack.message(slack.channel_id("approvals"), card["ts"])
        assert final is not None and not buttons(final)
        assert (await audit.verify(harness.runtime.store)).ok


async def test_the_level_reached_decides_and_the_chain_stops(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "spend.yaml").write_text(textwrap.dedent(CHAIN))
    async with running_bot(database, workflows_dir=tmp_path, seed=SEED) as harness:
        slack = harness.slack
        await slack.slash_command("req", "general", "spend 5k")
        card = await card_in(harness, "approvals")

        async def escalated_once() -> bool:
            rows = await actions(harness)
            return any(r.action == "approval.escalated" for r in rows)

        await slack.wait_for(escalated_once, timeout=10, message="no escalation")
        await slack.click("director", card["ts"], "approval:approve", channel="approvals")
        run = await the_run(harness, "succeeded")
        assert run.context["steps"]["review"]["decided_by"] == "U0DIRECTOR"
        assert run.context["steps"]["book"] == {"booked": True}
        rows = await actions(harness)
        assert escalations(rows) == [(1, ["U0DIRECTOR"])]


async def test_old_escalate_to_is_a_one_level_chain(database: Database, tmp_path: Path) -> None:
    (tmp_path / "legacy.yaml").write_text(textwrap.dedent(LEGACY))
    async with running_bot(database, workflows_dir=tmp_path, seed=SEED) as harness:
        await harness.slack.slash_command("req", "general", "legacy thing")
        await card_in(harness, "approvals")
        # Nobody decided at either level: the gate settles timed_out and, with no
        # `next.timed_out` in the workflow, so does the run (workflows/lifecycle.py).
        run = await the_run(harness, "timed_out")
        assert run.context["steps"]["review"]["outcome"] == "timed_out"
        rows = await actions(harness)
        assert escalations(rows) == [(1, ["U0DIRECTOR"])]


def problems(tmp_path: Path, escalation: str, extra: str = "") -> list[str]:
    """What check says of CHAIN with its ``escalation:`` block replaced (and ``extra`` added)."""
    head, rest = CHAIN.split("      escalation:\n")
    tail = rest[rest.index("  - id: book") :]
    block = textwrap.indent(textwrap.dedent(escalation).rstrip("\n") + "\n", "        ")
    source = head + (f"      {extra}\n" if extra else "") + "      escalation:\n" + block + tail
    (tmp_path / "spend.yaml").write_text(textwrap.dedent(source))
    result = load_folder(tmp_path, CheckContext(templates_dir=BUNDLED_TEMPLATES))
    assert not result.workflows, "the definition should have been refused"
    return [f"{e.field}: {e.message}" for e in result.errors]


def test_check_refuses_a_chain_that_would_not_end_or_asks_nobody(tmp_path: Path) -> None:
    no_final = problems(tmp_path, "levels:\n  - {approvers: [U0VP], timeout: 1s}\n")
    assert any("escalation: " in p and "needs a final action" in p for p in no_final), no_final

    nobody = problems(tmp_path, "levels:\n  - {approvers: [], timeout: 1s}\nthen: reject\n")
    assert any("escalation.levels[0].approvers" in p for p in nobody), nobody

    endless = problems(tmp_path, "levels:\n  - {approvers: [U0VP]}\nthen: reject\n")
    assert any("levels[0]: " in p and "needs a timeout" in p for p in endless), endless

    self_approval = problems(
        tmp_path,
        "levels:\n  - {approvers: [U0VP], timeout: 1s}\nthen: approve\n",
        extra="not_requester: true",
    )
    assert any("four-eyes" in p for p in self_approval), self_approval

    dangling = problems(tmp_path, "levels:\n  - {approvers: [U0VP], timeout: 1s}\nthen: {goto: x}")
    assert any("escalation.then.goto" in p and "unknown step 'x'" in p for p in dangling), dangling
