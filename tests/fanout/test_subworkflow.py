"""``workflow: {name, inputs}``: a child run, waited for durably, in the parent's thread.

On SQLite and PostgreSQL through the real engine: the parent waits for the child's
outcome across a restart (a new engine over the same database), the child's messages
go to the parent's thread, cancelling the parent cancels the child, and a child that
does not succeed fails the parent's step unless ``next`` maps its ending.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from tests.support.clock import ManualClock
from tests.support.engines import drain, make_engine, run_row, start, workflow
from tests.workflows.test_step_outputs import MemoryChat
from workflows import approvals
from workflows.engine import Engine
from workflows.loader import CheckContext, load_folder
from workflows.ports import ChatMessage, MessageRef
from workflows.runs import cancel_run
from workflows.store import Store
from workflows.tables import AuditRow, GateRow, RunRow, SubRunRow

APPROVAL = """
name: manager-approval
steps:
  - id: ask
    approve: {approvers: [UMGR], timeout: 2d}
  - id: done
    set: {approved_by: "{{ steps.ask.decided_by }}"}
"""

PURCHASE = """
name: purchase
channel: "#purchasing"
steps:
  - id: approval
    workflow:
      name: manager-approval
      inputs: {text: "approve {{ input.text }}", amount: 120}
      next: {rejected: declined}
  - id: order
    set: {ordered: true, child: "{{ steps.approval.run }}"}
    goto: finish
  - id: declined
    set: {ordered: false}
  - id: finish
    set: {done: true}
"""


class ThreadChat(MemoryChat):
    """Remembers the thread of every post."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[tuple[str, str | None]] = []

    async def post(
        self, channel: str, message: ChatMessage, *, thread_ts: str | None = None
    ) -> MessageRef:
        self.threads.append((message.template, thread_ts))
        return await super().post(channel, message, thread_ts=thread_ts)


def _engine(store: Store, clock: ManualClock, chat: ThreadChat) -> Engine:
    return make_engine(store, clock, workflow(PURCHASE), workflow(APPROVAL), chat=chat)


async def _child(store: Store, parent: str) -> RunRow:
    async with store.read() as session:
        child_id = await session.scalar(
            select(SubRunRow.child_run_id).where(SubRunRow.parent_run_id == parent)
        )
    assert child_id is not None, "no child run was linked"
    return await run_row(store, child_id)


async def _decide(store: Store, engine: Engine, child: RunRow, decision: str) -> None:
    gate = child.context["steps"]["ask"]["gate"]
    decided = await approvals.decide(
        store,
        engine.workflows,
        gate_id=gate,
        user_id="UMGR",
        decision=decision,
        reason=None,
        now=engine.clock.now(),
    )
    assert decided.status == "resolved", decided


async def test_the_parent_waits_for_the_child_across_a_restart(store: Store) -> None:
    clock, chat = ManualClock(), ThreadChat()
    engine = _engine(store, clock, chat)
    parent_id = await start(engine, "purchase", "a laptop", user_id="U1")
    await drain(engine)
    parent, child = await run_row(store, parent_id), await _child(store, parent_id)
    assert parent.status == child.status == "waiting"
    assert child.context["input"]["text"] == "approve a laptop"
    assert child.context["input"]["amount"] == 120 and child.requester == "U1"
    # The child runs in the parent's thread: its approval card is a reply to the parent's root.
    assert (child.channel_id, child.root_ts) == (parent.channel_id, parent.root_ts)
    assert ("approval_card", parent.root_ts) in chat.threads

    restarted = _engine(store, clock, chat)  # a new process: nothing was waiting in memory
    await _decide(store, restarted, child, "approve")
    await drain(restarted)
    parent = await run_row(store, parent_id)
    assert parent.status == "succeeded", parent.error
    out = parent.context["steps"]["approval"]
    assert out["run"] == child.id and out["status"] == "succeeded"
    assert out["steps"]["done"]["approved_by"] == "UMGR"
    assert parent.context["steps"]["order"] == {"ordered": True, "child": child.id}
    assert (await run_row(store, child.id)).status == "succeeded"


async def test_a_rejected_child_goes_where_next_says(store: Store) -> None:
    clock, chat = ManualClock(), ThreadChat()
    engine = _engine(store, clock, chat)
    parent_id = await start(engine, "purchase", "a yacht", user_id="U1")
    await drain(engine)
    await _decide(store, engine, await _child(store, parent_id), "reject")
    await drain(engine)
    parent = await run_row(store, parent_id)
    assert parent.status == "succeeded", parent.error
    assert parent.context["steps"]["approval"]["status"] == "rejected"
    assert parent.context["steps"]["declined"] == {"ordered": False}
    assert "order" not in parent.context["steps"]


async def test_an_unmapped_ending_fails_the_parents_step(store: Store) -> None:
    clock, chat = ManualClock(), ThreadChat()
    source = PURCHASE.replace("      next: {rejected: declined}\n", "")
    engine = make_engine(store, clock, workflow(source), workflow(APPROVAL), chat=chat)
    parent_id = await start(engine, "purchase", "a yacht", user_id="U1")
    await drain(engine)
    child = await _child(store, parent_id)
    await _decide(store, engine, child, "reject")
    await drain(engine)
    parent = await run_row(store, parent_id)
    assert parent.status == "failed"
    assert parent.error == f"manager-approval (run {child.id}) ended rejected"


async def test_cancelling_the_parent_cancels_the_child(store: Store) -> None:
    clock, chat = ManualClock(), ThreadChat()
    engine = _engine(store, clock, chat)
    parent_id = await start(engine, "purchase", "a desk", user_id="U1")
    await drain(engine)
    child = await _child(store, parent_id)
    await cancel_run(store, parent_id, "UADMIN", clock.now())
    await drain(engine)
    assert (await run_row(store, parent_id)).status == "cancelled"
    assert (await run_row(store, child.id)).status == "cancelled"
    async with store.read() as session:
        gate = await session.get(GateRow, child.context["steps"]["ask"]["gate"])
        records = (
            await session.scalars(
                select(AuditRow).where(
                    AuditRow.run_id == child.id, AuditRow.action == "run.cancelled"
                )
            )
        ).all()
    assert gate is not None and gate.status == "cancelled"
    assert [(r.actor, r.detail) for r in records] == [("UADMIN", {"parent": parent_id})]


def _check(tmp_path: Path, files: dict[str, str]) -> tuple[list[str], set[str]]:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text.lstrip())
    loaded = load_folder(tmp_path, CheckContext())
    return [f"{e.line}: {e.field}: {e.message}" for e in loaded.errors], set(loaded.workflows)


def test_check_refuses_unknown_children(tmp_path: Path) -> None:
    errors, loaded = _check(tmp_path, {"purchase": PURCHASE})
    assert errors == ["6: steps[0].workflow.name: no workflow 'manager-approval' is loaded"]
    assert loaded == set()


def test_check_refuses_workflows_that_start_each_other(tmp_path: Path) -> None:
    looping = APPROVAL.replace(
        "  - id: done\n", "  - id: back\n    workflow: {name: purchase}\n  - id: done\n"
    )
    errors, loaded = _check(tmp_path, {"purchase": PURCHASE, "approval": looping})
    assert sorted(errors) == [
        "6: steps[0].workflow.name: workflows start each other in a loop: "
        "purchase -> manager-approval -> purchase",
        "6: steps[1].workflow.name: workflows start each other in a loop: "
        "manager-approval -> purchase -> manager-approval",
    ]
    assert loaded == set()
    itself = "name: selfish\nsteps:\n  - id: again\n    workflow: {name: selfish}\n"
    errors, _ = _check(_fresh(tmp_path), {"s": itself})
    assert errors == [
        "4: steps[0].workflow.name: workflows start each other in a loop: selfish -> selfish"
    ]


def _fresh(tmp_path: Path) -> Path:
    folder = tmp_path / "fresh"
    folder.mkdir()
    return folder


QUICK = """
name: quick
steps:
  - id: only
    set: {seen: "{{ input.text }}"}
"""

CALLER = """
name: caller
steps:
  - id: sub
    workflow: {name: quick, inputs: {text: "hello"}}
  - id: after
    set: {child_said: "{{ steps.sub.steps.only.seen }}"}
"""


async def test_a_child_that_ended_before_it_was_linked_is_not_missed(store: Store) -> None:
    """The window between starting the child and linking it: the child ends inside it (its
    end finds no link, so queues no signal), and the link must see that end."""
    clock = ManualClock()
    engine = make_engine(store, clock, workflow(CALLER), workflow(QUICK))
    parent_id = await start(engine, "caller")
    (job,) = await engine.claim(10)
    # As if the step had started the child and crashed before linking it: the same start
    # (same dedupe key), worked to its end by another worker.
    key = f"workflow:{parent_id}:sub:{job.id}"
    child_id = await start(engine, "quick", "hello", dedupe_key=key)
    await drain(engine)  # only the child is claimable: the parent's job is leased to us
    assert (await run_row(store, child_id)).status == "succeeded"
    # The re-executed step gets the same child back, already ended, and goes on at once.
    follow_up = await engine.execute(job)
    assert follow_up is not None and follow_up.step_id == "after"
    await engine.execute(follow_up)
    parent = await run_row(store, parent_id)
    assert parent.status == "succeeded", parent.error
    assert parent.context["steps"]["sub"]["run"] == child_id
    assert parent.context["steps"]["after"] == {"child_said": "hello"}
