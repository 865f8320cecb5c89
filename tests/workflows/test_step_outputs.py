"""Each step model declares its kind and its output shape; the executors keep to both.

The registry of models (``workflows.language.steps.STEP_MODELS``) and the registry of
executors (``workflows.steps.STEP_KINDS``) must name the same kinds, and every kind,
run through the engine, must put in ``steps.<id>`` only keys its model declares
(``outputs()``), so what ``check`` knows of a step is what the step produces.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from connectors.ai.openai_compat import OpenAICompatConfig, OpenAICompatProvider
from connectors.registry import ConnectorRegistry
from tests.fakes.openai_server import FakeOpenAI
from tests.support.clock import ManualClock
from tests.support.engines import drain, make_engine, run_row, start, workflow
from tests.support.stores import Database
from workflows import approvals, asks, routing
from workflows.language.steps import STEP_MODELS
from workflows.language.workflow import Workflow
from workflows.ports import ChatMessage, MessageRef
from workflows.steps import STEP_KINDS
from workflows.steps.base import Services
from workflows.store import Store


def test_models_and_executors_name_the_same_kinds() -> None:
    assert sorted(STEP_MODELS) == sorted(STEP_KINDS)
    for kind, executor in STEP_KINDS.items():
        assert executor.model is STEP_MODELS[kind], kind
        assert kind == executor.model.KIND


class MemoryChat:
    """The chat port kept in memory: every post gets a new ts."""

    def __init__(self) -> None:
        self.posted = 0

    async def post(
        self, channel: str, message: ChatMessage, *, thread_ts: str | None = None
    ) -> MessageRef:
        self.posted += 1
        return MessageRef(channel.lstrip("@#") or "C1", f"1700000000.{self.posted:06d}")

    async def update(self, ref: MessageRef, message: ChatMessage) -> None:
        return None

    async def find(self, channel: str, key: str, *, thread_ts: str | None = None) -> None:
        return None

    async def resolve_channel(self, name_or_id: str) -> str:
        return name_or_id

    async def open_dm(self, user_id: str) -> str:
        return f"D{user_id}"

    async def usergroup_members(self, handle_or_id: str) -> list[str]:
        return []

    async def channel_members(self, name_or_id: str) -> list[str]:
        return []

    async def message_text(self, channel: str, ts: str) -> str:
        return ""

    async def upload(
        self, channel: str, filename: str, content: bytes, title: str, thread_ts: str | None = None
    ) -> None:
        return None


def echo(**values: Any) -> dict[str, Any]:
    return {"echo": values}


EVERY_KIND = f"""
name: every-kind
channel: "#ops"
steps:
  - id: amounts
    set: {{amount: 5}}
  - id: note
    post: {{text: "amount {{{{ steps.amounts.amount }}}}"}}
  - id: pause
    wait: {{duration: 1s}}
  - id: pick
    switch: {{value: "{{{{ steps.amounts.amount }}}}", cases: {{"5": custom}}, default: custom}}
  - id: custom
    call: {{function: "{__name__}:echo", args: {{x: 1}}}}
  - id: rows
    sql: {{connection: db, query: "select 1 as one"}}
  - id: kind
    classify: {{labels: {{billing: {{}}, access: {{}}}}}}
  - id: fields
    extract: {{fields: {{amount: int}}}}
  - id: gist
    summarize: {{}}
  - id: ask
    approve: {{approvers: [U1, U2]}}
  - id: question
    ask: {{people: [U1], fields: [{{id: cc}}]}}
  - id: owner
    route: {{label: "billing", owners: {{billing: "#billing"}}, triage: "#triage"}}
  - id: week
    digest: {{channel: "#ops", chart: false}}
  - id: many
    foreach: {{items: "{{{{ [1, 2] }}}}", do: {{set: {{v: "{{{{ item }}}}"}}}}}}
  - id: both
    parallel: {{steps: [{{id: one, set: {{x: 1}}}}, {{id: two, set: {{x: 2}}}}]}}
  - id: done
    end: "closed"
"""


@pytest_asyncio.fixture(loop_scope="module")
async def store(database: Database) -> AsyncIterator[Store]:
    store = database.store()
    yield store
    await store.dispose()


@pytest_asyncio.fixture(loop_scope="module")
async def provider() -> AsyncIterator[OpenAICompatProvider]:
    fake = FakeOpenAI()
    async with fake.running():
        config = OpenAICompatConfig(
            name="openai", api_key="sk-test-0000", base_url=f"{fake.root_url}/v1", model="m"
        )
        provider = OpenAICompatProvider(config)
        yield provider
        await provider.aclose()


@pytest.mark.asyncio(loop_scope="module")
async def test_every_kind_outputs_only_what_its_model_declares(
    store: Store, provider: OpenAICompatProvider, tmp_path: Path
) -> None:
    wf = workflow(EVERY_KIND)
    # The connector kinds (email, ticket, webhook) are checked in tests/steps/ against real servers;
    # workflow (a child run) in tests/fanout/test_subworkflow.py.
    assert {step.KIND for step in wf.steps} >= set(STEP_MODELS) - {
        "http",
        "fail",
        "email",
        "ticket",
        "webhook",
        "workflow",
    }
    sqlite3.connect(tmp_path / "db.sqlite").close()  # the connection opens it read-only
    connectors = ConnectorRegistry.build(
        {"db": {"type": "sql", "url": f"sqlite+aiosqlite:///{tmp_path}/db.sqlite"}}, {}
    )
    clock = ManualClock()
    engine = make_engine(
        store, clock, wf, chat=MemoryChat(), services=Services(connectors=connectors, ai=provider)
    )
    run_id = await start(engine, wf.name, "amount: 12 please refund my invoice", user_id="U9")
    await _drain_past_waits(engine, clock)
    waiting = await run_row(store, run_id)
    assert waiting.status == "waiting", (waiting.status, waiting.error)
    gate = waiting.context["steps"]["ask"]["gate"]
    decided = await approvals.decide(
        store,
        engine.workflows,
        gate_id=gate,
        user_id="U1",
        decision="approve",
        reason=None,
        now=clock.now(),
    )
    assert decided.status == "resolved", decided
    await _drain_past_waits(engine, clock)
    question = (await run_row(store, run_id)).context["steps"]["question"]["gate"]
    answered = await asks.answer(
        store, engine.workflows, gate_id=question, user_id="U1", values={"cc": "X"}, now=clock.now()
    )
    assert answered.status == "answered", answered
    await _drain_past_waits(engine, clock)
    assignment = (await run_row(store, run_id)).context["steps"]["owner"]["assignment"]
    await routing.claim(store, assignment, "U2", clock.now())
    await _drain_past_waits(engine, clock)
    await routing.close(store, assignment, "U2", clock.now())
    await _drain_past_waits(engine, clock)
    run = await run_row(store, run_id)
    assert run.status == "succeeded", (run.status, run.error)
    _assert_within_declared(wf, run.context["steps"])
    await connectors.aclose()


async def _drain_past_waits(engine: Any, clock: ManualClock) -> None:
    await drain(engine)
    clock.advance(2)
    await drain(engine)


def _assert_within_declared(wf: Workflow, outputs: dict[str, Any]) -> None:
    assert set(outputs) == {step.id for step in wf.steps}
    for step in wf.steps:
        declared = step.outputs()
        produced = set(outputs[step.id])
        if declared is None:  # call: whatever the function returns
            assert produced == {"echo"}
            continue
        assert produced <= set(declared), (step.KIND, produced - set(declared))
