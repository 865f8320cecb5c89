"""A Workflow Builder step is completed exactly once: an ``ended`` job that runs again calls
nothing, a lost record is answered by Slack (``execution_not_in_running_state``) and kept, and
a failed call is retried until Slack has it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from sandbox.slack.functions import FunctionStep, MessageStep, WorkflowBuilder
from tests.functions.support import (
    card_in,
    completions,
    function_rows,
    manifest,
    recorded,
)
from tests.support.harness import Harness
from workflows.lifecycle import ENDED_JOB, ENDED_STEP
from workflows.tables import FunctionRunRow, JobRow, RunRow


def quick_flow(builder: WorkflowBuilder) -> Any:
    inputs = {"workflow": "expense", "text": "taxi", "requester": "{{trigger.user}}"}
    return builder.workflow(
        "Quick",
        [FunctionStep("run_workflow", inputs), MessageStep("#general", "{{steps.0.outcome}}")],
    )


async def approved_run(harness: Harness) -> tuple[WorkflowBuilder, Any]:
    builder = WorkflowBuilder(harness.slack, manifest())
    flow = await builder.start(quick_flow(builder), user="alice")
    card = await card_in(harness)
    await harness.slack.click("carol", card["ts"], "approval:approve", channel="finance-approvals")
    return builder, flow


async def ended_jobs_done(harness: Harness, count: int) -> None:
    async def done() -> bool:
        async with harness.runtime.store.read() as session:
            jobs = list(await session.scalars(select(JobRow).where(JobRow.kind == ENDED_JOB)))
        return len(jobs) >= count and all(j.status == "done" for j in jobs)

    await harness.slack.wait_for(done, message="the ended job did not finish")


async def run_ended_job_again(harness: Harness) -> None:
    store, now = harness.runtime.store, harness.runtime.engine.clock.now()
    async with store.transaction() as session:
        run = (await session.scalars(select(RunRow))).one()
        payload = {"ending": run.status, "by": "switchboard", "at": now.isoformat()}
        session.add(JobRow.queued(run.id, ENDED_STEP, ENDED_JOB, now, now, payload))
    harness.runtime.engine.wakeup.set()


def successes(harness: Harness) -> list[Any]:
    return [c for c in completions(harness) if c.response.get("ok")]


async def test_an_ended_job_that_runs_again_calls_nothing(harness: Harness) -> None:
    builder, flow = await approved_run(harness)
    await builder.finished(flow)
    await ended_jobs_done(harness, 1)
    await run_ended_job_again(harness)
    await ended_jobs_done(harness, 2)
    assert len(completions(harness)) == 1
    assert flow.status == "completed" and len(flow.outputs) == 2


async def test_a_lost_record_is_answered_by_slack_and_not_sent_twice(harness: Harness) -> None:
    builder, flow = await approved_run(harness)
    await builder.finished(flow)
    await ended_jobs_done(harness, 1)
    # The crash window: Slack took the completion, the record of it never committed.
    async with harness.runtime.store.transaction() as session:
        await session.execute(
            update(FunctionRunRow).values(completed_at=None, completion=None, token="xwfp-old")
        )
    await run_ended_job_again(harness)
    await ended_jobs_done(harness, 2)
    (row,) = await function_rows(harness)
    assert row.completion == "gone" and row.token is None
    assert len(successes(harness)) == 1  # Slack ran the next step once


async def test_a_failed_completion_is_retried_until_slack_has_it(harness: Harness) -> None:
    harness.slack.inject_faults("functions.completeSuccess", ["internal_error", 503])
    builder, flow = await approved_run(harness)
    await builder.finished(flow, timeout=30)
    assert flow.status == "completed"
    calls = completions(harness)
    assert [c.response.get("ok") for c in calls][-1] is True
    assert len(successes(harness)) == 1
    row = await recorded(harness)
    assert row.completion == "success" and row.attempts >= 2
