"""``switchboard test``: run a workflow on the real engine with no Slack and no real systems.

Each test gets a fresh SQLite store (migrated once per invocation, copied per test), an
in-process chat recorder (``bot/chat_recorder.py``), recorded AI answers and a loopback
server standing in for every http connection (``bot/workflow_test_stubs.py``). People's
decisions on approval cards are made through ``workflows.approvals.decide``, as a click
is. What comes out: the path of steps that ran, every message that would be posted,
every outbound call, and the problems where it differs from ``expect``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.chat_recorder import ChatRecorder, Recorded
from bot.workflow_test_stubs import OutboundCall, RecordedAI, StubSystems, serving
from connectors.ai.base import AIProvider
from connectors.ai.money import revive
from connectors.registry import ConnectorRegistry
from workflows import migrate
from workflows.approval_policy import APPROVE, REJECT
from workflows.approvals import decide
from workflows.engine import ClaimedJob, Engine
from workflows.language.steps.http import HttpStep
from workflows.language.workflow import Workflow
from workflows.language.workflow_tests import Expectation, WorkflowTest
from workflows.ports import SystemClock
from workflows.runs import StartRequest, start_run
from workflows.steps.base import Services
from workflows.store import Store
from workflows.tables import AuditRow, GateRow, RunRow

APPROVER = "U0APPROVER"
"""Who decides on approval cards in a test: a member of every group and channel."""
MAX_JOBS = 500


@dataclass
class CaseResult:
    workflow: str
    test: str
    status: str = ""
    error: str | None = None
    path: list[str] = field(default_factory=list)
    messages: list[Recorded] = field(default_factory=list)
    calls: list[OutboundCall] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Bench:
    """Stores and the offline AI shared by the tests of one invocation."""

    def __init__(self, folder: Path, fallback_ai: AIProvider, templates_dir: Path) -> None:
        self._folder = folder
        self._template = folder / "template.db"
        self._cases = 0
        self.fallback_ai = fallback_ai
        self.templates_dir = templates_dir

    async def store(self) -> Store:
        if not self._template.exists():
            store = Store(f"sqlite+aiosqlite:///{self._template}")
            await migrate.upgrade(store)
            await store.dispose()
        self._cases += 1
        path = self._folder / f"case-{self._cases}.db"
        shutil.copy(self._template, path)
        return Store(f"sqlite+aiosqlite:///{path}")


@asynccontextmanager
async def open_bench(fallback_ai: AIProvider, templates_dir: Path) -> AsyncIterator[Bench]:
    with tempfile.TemporaryDirectory(prefix="switchboard-test-") as folder:
        yield Bench(Path(folder), fallback_ai, templates_dir)


async def run_case(
    bench: Bench, workflow: Workflow, case: WorkflowTest, *, adhoc: bool = False
) -> CaseResult:
    """Run one test; ``adhoc``: every approval gets the case's one decision, nothing expected."""
    expect = None if adhoc else case.expect
    every_approval = adhoc
    result = CaseResult(workflow.name, case.name)
    stubs = StubSystems(case)
    chat = ChatRecorder(bench.templates_dir, members=[APPROVER])
    store = await bench.store()
    try:
        async with serving(stubs) as url:
            registry = ConnectorRegistry.build(
                {name: {"type": "http", "base_url": f"{url}/{name}"} for name in _http(workflow)},
                env={},
            )
            async with registry:
                ai = RecordedAI(case, bench.fallback_ai)
                services = Services(connectors=registry, ai=ai)
                engine = Engine(
                    store=store,
                    workflows={workflow.name: workflow},
                    chat=chat,
                    clock=SystemClock(),
                    owner="switchboard-test",
                    services=services,
                )
                await _drive(engine, case, result, every_approval=every_approval)
                run = await _run(store)
                result.status, result.error = run.status, run.error
                result.path = await _path(store, run)
                result.messages, result.calls = chat.messages, stubs.calls
                steps = run.context.get("steps", {})
    finally:
        await store.dispose()
    if expect is None:  # an ad-hoc run (--text): it fails only when the run fails
        result.problems += [f"the run failed: {run.error}"] if run.status == "failed" else []
    else:
        result.problems += _compare(expect, result, steps)
    return result


async def _drive(
    engine: Engine, case: WorkflowTest, result: CaseResult, *, every_approval: bool
) -> None:
    request = StartRequest(
        workflow=engine.workflows[next(iter(engine.workflows))],
        source="test",
        text=case.input.text,
        user_id=case.input.user,
        channel_id=case.input.channel,
    )
    started = await start_run(engine.store, request, engine.clock.now())
    decisions = list(case.decisions)
    await _drain(engine)
    while decisions and (gate := await _open_gate(engine.store, started.run_id)) is not None:
        choice = decisions[0] if every_approval else decisions.pop(0)
        decision = APPROVE if choice == "approve" else REJECT
        decided = await decide(
            engine.store,
            engine.workflows,
            gate_id=gate.id,
            user_id=APPROVER,
            decision=decision,
            reason="rejected in a test" if decision == REJECT else None,
            now=engine.clock.now(),
        )
        if decided.status not in ("recorded", "resolved"):
            result.problems.append(f"the {decision} was refused: {decided.message}")
            return
        await _drain(engine)
    if decisions and not every_approval:
        result.problems.append(f"{len(decisions)} decisions left over: no approval was open")


async def _drain(engine: Engine) -> None:
    ran = 0
    while jobs := await engine.claim(10):
        for job in jobs:
            follow: ClaimedJob | None = job
            while follow is not None:
                follow = await engine.execute(follow)
                ran += 1
                if ran > MAX_JOBS:
                    raise RuntimeError(f"more than {MAX_JOBS} steps ran: a loop?")
    engine.outbox.lanes.quiet = 0  # no Slack to pace: run cards go out at once, and are shown
    await engine.outbox.lanes.drain()


async def _open_gate(store: Store, run_id: str) -> GateRow | None:
    async with store.read() as session:
        query = select(GateRow).where(GateRow.run_id == run_id, GateRow.status == "open")
        return (await session.scalars(query)).first()


async def _run(store: Store) -> RunRow:
    async with store.read() as session:
        return (await session.scalars(select(RunRow))).one()


async def _path(store: Store, run: RunRow) -> list[str]:
    """Steps in the order they first appear in the audit trail, skipped ones left out."""
    async with store.read() as session:
        rows = await session.scalars(
            select(AuditRow.step_id).where(AuditRow.run_id == run.id).order_by(AuditRow.seq)
        )
        ids = [step_id for step_id in rows.all() if step_id]
    steps: dict[str, Any] = run.context.get("steps", {})
    ran = [i for i in dict.fromkeys(ids) if steps.get(i) != {"skipped": True}]
    return ran


def _http(workflow: Workflow) -> set[str]:
    return {step.http.connection for step in workflow.steps if isinstance(step, HttpStep)}


def _compare(expect: Expectation, result: CaseResult, steps: dict[str, Any]) -> list[str]:
    problems = []
    if result.status != expect.status:
        why = f" ({result.error})" if result.error else ""
        problems.append(f"expected status {expect.status}, got {result.status}{why}")
    if expect.path is not None and result.path != expect.path:
        problems.append(f"expected path {' → '.join(expect.path)}, got {' → '.join(result.path)}")
    for dotted, wanted in expect.outputs.items():
        step_id, _, key = dotted.partition(".")
        output = steps.get(step_id)
        if not isinstance(output, dict) or key not in output:
            problems.append(f"{dotted}: no such output")
        elif not _matches(output[key], wanted):
            problems.append(f"{dotted}: expected {wanted!r}, got {output[key]!r}")
    texts = [message.text for message in result.messages]
    for wanted_text in expect.posted:
        if not any(wanted_text in text for text in texts):
            problems.append(f"nothing posted contains {wanted_text!r}")
    return problems


def _matches(actual: Any, wanted: Any) -> bool:
    if actual == wanted:
        return True
    return isinstance(wanted, str) and str(revive(actual)) == wanted
