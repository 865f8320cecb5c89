"""Issue 16 item 6: admins (user IDs and @groups in ``SWITCHBOARD_ADMINS``) may see, cancel
and retry any run from Slack, including runs a schedule started (no requester); ``retry``
re-runs from a chosen step with the recorded context, from Slack and from the CLI; every
action is audited with who and why. Everyone else is told there is no such run.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from subprocess import PIPE
from typing import Any

from sqlalchemy import select

from sandbox.slack import ChannelSeed, UserGroupSeed, UserSeed, WorkspaceSeed
from tests.approvals.test_approvals_end_to_end import buttons, card_in
from tests.support.harness import Harness, running_bot
from tests.support.stores import Database
from workflows.runs import StartRequest, start_run
from workflows.tables import AuditRow, GateRow, RunRow

ADMIN = "U0ADMIN01"
SEED = WorkspaceSeed(
    users=[UserSeed(name=n) for n in ("alice", "bob", "carol", "dave")]
    + [UserSeed(name="root", id=ADMIN)],
    channels=[ChannelSeed(name="general"), ChannelSeed(name="approvals")],
    usergroups=[UserGroupSeed(handle="ops", users=["carol"])],
)
NIGHTLY = """
name: nightly
triggers: [{schedule: {cron: "0 3 * * *"}}]
steps:
  - id: gather
    set: {count: 3}
  - id: hold
    wait: {duration: 1h}
  - id: report
    set: {total: "{{ steps.gather.count }}"}
"""
CHAIN = """
name: chain
triggers: [{command: chain}]
steps:
  - id: a
    set: {seed: "{{ input.text }}"}
  - id: b
    set: {echo: "{{ steps.a.seed }}"}
  - id: c
    set: {done: true}
"""
GATED = """
name: gated
triggers: [{command: gated}]
steps:
  - id: review
    approve:
      channel: "#approvals"
      approvers: ["@ops"]
  - id: book
    set: {booked: true}
"""
SWITCHBOARD = Path(sys.executable).parent / "switchboard"


def folder(tmp_path: Path) -> Path:
    (tmp_path / "nightly.yaml").write_text(textwrap.dedent(NIGHTLY))
    (tmp_path / "chain.yaml").write_text(textwrap.dedent(CHAIN))
    (tmp_path / "gated.yaml").write_text(textwrap.dedent(GATED))
    return tmp_path


async def run_row(harness: Harness, run_id: str) -> RunRow:
    async with harness.runtime.store.read() as session:
        run = await session.get(RunRow, run_id)
    assert run is not None
    return run


async def until_status(harness: Harness, run_id: str, status: str) -> RunRow:
    async def reached() -> RunRow | None:
        run = await run_row(harness, run_id)
        return run if run.status == status else None

    return await harness.slack.wait_for(reached, timeout=15, message=f"run never {status}")


async def records(harness: Harness, run_id: str) -> list[AuditRow]:
    async with harness.runtime.store.read() as session:
        rows = await session.scalars(
            select(AuditRow).where(AuditRow.run_id == run_id).order_by(AuditRow.seq)
        )
        return list(rows.all())


async def completed_steps(harness: Harness, run_id: str) -> Counter[str]:
    rows = await records(harness, run_id)
    return Counter(r.step_id for r in rows if r.action == "step.completed" and r.step_id)


async def scheduled_run(harness: Harness) -> str:
    """A run as the scheduler starts it: no requester, a schedule dedupe key."""
    workflow = harness.runtime.workflows["nightly"]
    fire = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
    request = StartRequest(
        workflow,
        source="schedule",
        dedupe_key=f"schedule:nightly:0:{fire.isoformat()}",
        input={"schedule": {"fire_time": fire.isoformat()}},
    )
    started = await start_run(harness.runtime.store, request, datetime.now(UTC))
    harness.runtime.deps.wakeup.set()
    return started.run_id


async def test_admin_group_member_cancels_and_retries_a_scheduled_run_others_are_refused(
    database: Database, tmp_path: Path
) -> None:
    async with running_bot(
        database, workflows_dir=folder(tmp_path), seed=SEED, SWITCHBOARD_ADMINS=f"{ADMIN},@ops"
    ) as harness:
        slack = harness.slack
        run_id = await scheduled_run(harness)
        waiting = await until_status(harness, run_id, "waiting")
        assert waiting.requester is None and waiting.context["steps"]["gather"] == {"count": 3}

        for action in ("status", "cancel", "retry"):
            refused = await slack.slash_command("dave", "general", f"{action} {run_id}")
            assert f"There is no run `{run_id}`" in refused.body, refused.body
        assert (await run_row(harness, run_id)).version == waiting.version

        status = await slack.slash_command("carol", "general", f"status {run_id}")
        assert "run.started" in status.body and "There is no run" not in status.body

        cancelled = await slack.slash_command(
            "carol", "general", f"cancel {run_id} -- stuck since the 3am fire"
        )
        assert f"Cancelled run `{run_id}`" in cancelled.body, cancelled.body
        await until_status(harness, run_id, "cancelled")

        retried = await slack.slash_command(
            "carol", "general", f"retry {run_id} report -- rerun the report only"
        )
        assert "from step *report*" in retried.body, retried.body
        done = await until_status(harness, run_id, "succeeded")
        assert done.context["steps"]["report"] == {"total": 3}
        assert done.context["steps"]["gather"] == {"count": 3}

        carol = slack.user_id("carol")
        rows = await records(harness, run_id)
        by_action = {r.action: r for r in rows if r.action in ("run.cancelled", "run.retried")}
        assert by_action["run.cancelled"].actor == carol
        assert by_action["run.cancelled"].detail["reason"] == "stuck since the 3am fire"
        assert by_action["run.cancelled"].detail["admin"] is True
        assert by_action["run.retried"].actor == carol
        assert by_action["run.retried"].detail["from_step"] == "report"
        assert by_action["run.retried"].detail["reason"] == "rerun the report only"
        assert (await completed_steps(harness, run_id))["gather"] == 1


async def test_retry_from_a_step_reruns_it_and_later_steps_keeping_earlier_outputs(
    database: Database, tmp_path: Path
) -> None:
    async with running_bot(
        database, workflows_dir=folder(tmp_path), seed=SEED, SWITCHBOARD_ADMINS=ADMIN
    ) as harness:
        slack = harness.slack
        await slack.slash_command("bob", "general", "chain first")
        async with harness.runtime.store.read() as session:
            run_id = (await session.scalars(select(RunRow.id))).one()
        before = await until_status(harness, run_id, "succeeded")

        unknown = await slack.slash_command("root", "general", f"retry {run_id} nope")
        assert unknown.body and "has no step `nope`" in unknown.body, unknown.body
        assert (await run_row(harness, run_id)).version == before.version

        stranger = await slack.slash_command("dave", "general", f"retry {run_id} b")
        assert f"There is no run `{run_id}`" in stranger.body

        retried = await slack.slash_command("root", "general", f"retry {run_id} b")
        assert "from step *b*" in retried.body, retried.body

        async def twice() -> Counter[str] | None:
            counts = await completed_steps(harness, run_id)
            return counts if counts["c"] == 2 else None

        counts = await slack.wait_for(twice, timeout=15, message="c did not run again")
        assert counts == Counter({"a": 1, "b": 2, "c": 2})
        after = await until_status(harness, run_id, "succeeded")
        assert after.context["steps"]["a"] == {"seed": "first"}
        assert after.context["steps"]["b"] == {"echo": "first"}
        assert after.context["steps"]["c"] == {"done": True}


@dataclass(frozen=True)
class Exited:
    returncode: int
    stdout: str
    stderr: str


async def cli(database: Database, workflows: Path, *args: str) -> Exited:
    """The real executable, awaited: the bot shares this event loop and must keep running."""
    env: dict[str, str] = {
        "PATH": "/usr/bin:/bin",
        "SWITCHBOARD_WORKFLOWS": str(workflows),
        "SWITCHBOARD_LOG_FORMAT": "console",
    } | database.env()
    process = await asyncio.create_subprocess_exec(
        str(SWITCHBOARD), *args, cwd=workflows, env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Exited(process.returncode, out.decode(), err.decode())


async def test_cli_retry_from_a_step_through_the_real_executable(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "defs").mkdir()
    workflows = folder(tmp_path / "defs")
    async with running_bot(database, workflows_dir=workflows, seed=SEED) as harness:
        await harness.slack.slash_command("bob", "general", "chain cli")
        async with harness.runtime.store.read() as session:
            run_id = (await session.scalars(select(RunRow.id))).one()
        before = await until_status(harness, run_id, "succeeded")

        bad = await cli(database, workflows, "retry", run_id, "--from", "nope")
        assert bad.returncode == 2, bad
        assert bad.stderr.strip().splitlines() == [f"run {run_id} has no step `nope`"]
        assert (await run_row(harness, run_id)).version == before.version

        good = await cli(database, workflows, "retry", run_id, "--from", "c", "--reason", "redo c")
        assert good.returncode == 0, good.stderr
        assert f"run {run_id}: running from c" in good.stdout

        async def twice() -> Counter[str] | None:
            counts = await completed_steps(harness, run_id)
            return counts if counts["c"] == 2 else None

        harness.runtime.deps.wakeup.set()
        counts = await harness.slack.wait_for(twice, timeout=15, message="c did not run again")
        assert counts == Counter({"a": 1, "b": 1, "c": 2})
        retried = [r for r in await records(harness, run_id) if r.action == "run.retried"]
        assert [(r.actor, r.detail["from_step"], r.detail["reason"]) for r in retried] == [
            ("cli", "c", "redo c")
        ]


async def test_retry_from_an_approve_step_asks_again_on_a_fresh_gate(
    database: Database, tmp_path: Path
) -> None:
    async with running_bot(
        database, workflows_dir=folder(tmp_path), seed=SEED, SWITCHBOARD_ADMINS=ADMIN
    ) as harness:
        slack = harness.slack
        await slack.slash_command("bob", "general", "gated new laptop")
        card = await card_in(harness, "approvals")
        await slack.click("carol", card["ts"], "approval:approve", channel="approvals")
        async with harness.runtime.store.read() as session:
            run_id = (await session.scalars(select(RunRow.id))).one()
        first = await until_status(harness, run_id, "succeeded")
        assert first.context["steps"]["book"] == {"booked": True}

        retried = await slack.slash_command("root", "general", f"retry {run_id} review -- ok now")
        assert "from step *review*" in retried.body, retried.body

        def open_again() -> dict[str, Any] | None:
            message = slack.message(slack.channel_id("approvals"), card["ts"])
            return message if message and buttons(message) else None

        await slack.wait_for(open_again, timeout=15, message="the card did not ask again")
        await slack.click("carol", card["ts"], "approval:approve", channel="approvals")

        async def booked_twice() -> Counter[str] | None:
            counts = await completed_steps(harness, run_id)
            return counts if counts["book"] == 2 else None

        await slack.wait_for(booked_twice, timeout=15, message="the run did not go on")
        done = await until_status(harness, run_id, "succeeded")
        assert done.context["steps"]["review"]["outcome"] == "approved"
        async with harness.runtime.store.read() as session:
            gates = sorted((g.step_id, g.status) for g in await session.scalars(select(GateRow)))
        assert gates == [("review", "approved"), (f"review@retry{first.version}", "approved")]
