"""Build an engine over a test database from inline YAML, and drive it job by job."""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

from workflows.engine import ClaimedJob, Engine
from workflows.language.workflow import Workflow
from workflows.null_chat import NullChat
from workflows.ports import Chat, Clock
from workflows.runs import StartRequest, start_run
from workflows.steps.base import Services
from workflows.store import Store
from workflows.tables import RunRow


def workflow(source: str) -> Workflow:
    return Workflow.model_validate(yaml.safe_load(textwrap.dedent(source)))


def make_engine(
    store: Store,
    clock: Clock,
    *workflows: Workflow,
    chat: Chat | None = None,
    owner: str = "test-worker",
    services: Services | None = None,
) -> Engine:
    return Engine(
        store=store,
        workflows={wf.name: wf for wf in workflows},
        chat=chat if chat is not None else NullChat(),  # no Slack in these tests
        clock=clock,
        owner=owner,
        services=services or Services(),
    )


async def start(engine: Engine, name: str, text: str = "", **kwargs: Any) -> str:
    request = StartRequest(workflow=engine.workflows[name], source="test", text=text, **kwargs)
    return (await start_run(engine.store, request, engine.clock.now())).run_id


async def drain(engine: Engine, limit: int = 1000) -> int:
    """Claim and execute due jobs until none is due; returns how many ran."""
    ran = 0
    while ran < limit:
        jobs = await engine.claim(10)
        if not jobs:
            return ran
        for job in jobs:
            follow_up: ClaimedJob | None = job
            while follow_up is not None:
                follow_up = await engine.execute(follow_up)
                ran += 1
    raise AssertionError(f"still due jobs after {limit}: a loop?")


async def run_row(store: Store, run_id: str) -> RunRow:
    async with store.transaction() as session:
        run = await session.get(RunRow, run_id)
    assert run is not None
    return run
