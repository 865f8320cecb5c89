"""The engine on both backends: steps in order, branches, durable waits, retries, failure."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import func, select

from tests.support.clock import ManualClock
from tests.support.engines import drain, make_engine, run_row, start, workflow
from workflows import audit
from workflows.ids import new_id
from workflows.null_chat import NullChat
from workflows.runs import StartRequest, _start_rows, retry_run
from workflows.store import Store
from workflows.tables import AuditRow, JobRow

CALLS: dict[str, int] = {}


def flaky(name: str, fail_times: int) -> dict[str, int]:
    """A custom step that fails ``fail_times`` times, then succeeds (used through `call`)."""
    CALLS[name] = CALLS.get(name, 0) + 1
    if CALLS[name] <= fail_times:
        from workflows.steps.base import StepError

        raise StepError(f"upstream refused (try {CALLS[name]})", retryable=True)
    return {"tries": CALLS[name]}


async def test_steps_run_in_order_and_see_earlier_results(store: Store) -> None:
    clock = ManualClock()
    wf = workflow("""
        name: calc
        steps:
          - id: a
            set: {x: "{{ input.text | int * 2 }}"}
          - id: b
            set: {y: "{{ steps.a.x + 1 }}"}
    """)
    engine = make_engine(store, clock, wf)
    run_id = await start(engine, "calc", "20")
    assert await drain(engine) == 2
    run = await run_row(store, run_id)
    assert run.status == "succeeded"
    assert run.context["steps"] == {"a": {"x": 40}, "b": {"y": 41}}


async def test_request_text_is_data_never_code(store: Store) -> None:
    clock = ManualClock()
    wf = workflow("""
        name: echo
        steps:
          - id: a
            set: {said: "You said: {{ input.text }}"}
    """)
    engine = make_engine(store, clock, wf)
    payload = "{{ ''.__class__.__mro__[1].__subclasses__() }} {% for x in range(9) %}x{% endfor %}"
    run_id = await start(engine, "echo", payload)
    await drain(engine)
    run = await run_row(store, run_id)
    assert run.context["steps"]["a"]["said"] == f"You said: {payload}"


async def test_when_and_switch_choose_the_path(store: Store) -> None:
    clock = ManualClock()
    wf = workflow("""
        name: branch
        steps:
          - id: pick
            switch: {value: "{{ 'big' if input.text | int > 100 else 'small' }}",
                     cases: {big: big, small: small}}
          - id: big
            set: {size: big}
            goto: done
          - id: small
            set: {size: small}
          - id: skipped
            when: "{{ input.text | int > 1000 }}"
            set: {never: true}
          - id: done
            end: true
    """)
    engine = make_engine(store, clock, wf)
    big, small = await start(engine, "branch", "500"), await start(engine, "branch", "5")
    await drain(engine)
    big_run, small_run = await run_row(store, big), await run_row(store, small)
    assert set(big_run.context["steps"]) == {"pick", "big", "done"}
    assert small_run.context["steps"]["skipped"] == {"skipped": True}
    assert small_run.status == big_run.status == "succeeded"


async def test_durable_wait_is_a_due_time_not_a_coroutine(store: Store) -> None:
    clock = ManualClock()
    wf = workflow("""
        name: sleepy
        steps:
          - id: nap
            wait: {duration: 30s}
          - id: after
            set: {woke: true}
    """)
    engine = make_engine(store, clock, wf)
    run_id = await start(engine, "sleepy")
    assert await drain(engine) == 1
    assert (await run_row(store, run_id)).status == "waiting"
    clock.advance(29)
    assert await drain(engine) == 0
    # A brand-new engine (a restarted process) picks the wait up from the rows alone.
    restarted = make_engine(store, clock, wf, owner="another-process")
    clock.advance(2)
    assert await drain(restarted) == 1
    assert (await run_row(store, run_id)).status == "succeeded"


async def test_retryable_failure_backs_off_then_succeeds(store: Store) -> None:
    clock = ManualClock()
    CALLS.pop("twice", None)
    wf = workflow("""
        name: retrying
        steps:
          - id: call
            call:
              function: "tests.workflows.test_engine:flaky"
              args: {name: twice, fail_times: 2}
            retry: {attempts: 3, initial: 10s, jitter: false}
    """)
    engine = make_engine(store, clock, wf)
    run_id = await start(engine, "retrying")
    assert await drain(engine) == 1
    clock.advance(9)
    assert await drain(engine) == 0, "not due before the back-off"
    clock.advance(1)
    assert await drain(engine) == 1
    clock.advance(19)
    assert await drain(engine) == 0, "the second back-off doubles"
    clock.advance(1)
    assert await drain(engine) == 1
    run = await run_row(store, run_id)
    assert run.status == "succeeded"
    assert run.context["steps"]["call"] == {"tries": 3}


async def test_final_failure_fails_the_run_then_retry_resumes_it(store: Store) -> None:
    clock = ManualClock()
    CALLS.pop("fixable", None)
    wf = workflow("""
        name: fragile
        steps:
          - id: first
            set: {ok: true}
          - id: call
            call:
              function: "tests.workflows.test_engine:flaky"
              args: {name: fixable, fail_times: 2}
            retry: {attempts: 2, initial: 1s, jitter: false}
          - id: last
            set: {done: true}
    """)
    engine = make_engine(store, clock, wf)
    run_id = await start(engine, "fragile")
    await drain(engine)
    clock.advance(2)
    await drain(engine)
    run = await run_row(store, run_id)
    assert run.status == "failed"
    assert "upstream refused (try 2)" in (run.error or "")
    await retry_run(store, run_id, "U_OPERATOR", clock.now())
    await drain(engine)
    run = await run_row(store, run_id)
    assert run.status == "succeeded"
    assert run.context["steps"]["first"] == {"ok": True}, "earlier results are kept"
    verified = await audit.verify(store)
    assert verified.ok, verified.problem


async def test_on_error_goto_takes_the_recovery_branch(store: Store) -> None:
    clock = ManualClock()
    wf = workflow("""
        name: recover
        on_error: {goto: cleanup}
        steps:
          - id: boom
            fail: "cannot book {{ input.text }}"
          - id: unreached
            set: {x: 1}
          - id: cleanup
            set: {cleaned: true}
    """)
    engine = make_engine(store, clock, wf)
    run_id = await start(engine, "recover", "INV-1")
    await drain(engine)
    run = await run_row(store, run_id)
    assert run.status == "succeeded"
    assert "unreached" not in run.context["steps"]
    assert run.context["steps"]["cleanup"] == {"cleaned": True}


async def test_duplicate_delivery_starts_one_run(store: Store) -> None:
    clock = ManualClock()
    wf = workflow("""
        name: once
        steps:
          - id: a
            set: {x: 1}
    """)
    engine = make_engine(store, clock, wf)
    first = await start(engine, "once", dedupe_key="slack-event:Ev123")
    second = await start(engine, "once", dedupe_key="slack-event:Ev123")
    assert first == second
    async with store.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(JobRow)) == 1


async def test_audit_chain_detects_changes_and_deletions(store: Store) -> None:
    clock = ManualClock()
    wf = workflow("""
        name: audited
        steps:
          - id: a
            set: {x: 1}
          - id: b
            set: {y: 2}
    """)
    engine = make_engine(store, clock, wf)
    await start(engine, "audited")
    await start(engine, "audited")
    await drain(engine)
    assert (await audit.verify(store)).ok
    async with store.transaction() as session:
        rows = (await session.scalars(select(AuditRow).order_by(AuditRow.seq))).all()
        rows = [row for row in rows if row.action != "run.started"]  # one per run, first
        assert len(rows) == 6
        original = dict(rows[2].detail)
        rows[2].detail = {**original, "ms": 0}
        session.add(rows[2])
    broken = await audit.verify(store)
    assert not broken.ok and f"record {rows[2].seq}: its content was changed" in broken.problem
    async with store.transaction() as session:
        row = await session.get(AuditRow, rows[2].seq)
        assert row is not None
        row.detail = original
    assert (await audit.verify(store)).ok, "restoring the record restores the chain"
    async with store.transaction() as session:
        await session.delete(await session.get(AuditRow, rows[4].seq))
    deleted = await audit.verify(store)
    assert not deleted.ok and f"record {rows[5].seq}: the record before it" in deleted.problem


async def test_a_large_backlog_does_not_stall_the_claim(store: Store) -> None:
    """2,000 queued jobs in a table PostgreSQL has not analysed yet: the claim still picks
    its jobs once (as ``IN (subquery)`` the locking subquery ran per row, for minutes)."""
    clock = ManualClock()
    wf = workflow("""
        name: noop
        steps:
          - {id: a, quiet: true, set: {x: 1}}
    """)
    engine = make_engine(store, clock, wf)
    async with store.transaction() as session:
        for _ in range(2000):
            session.add_all(_start_rows(new_id(), StartRequest(wf, "test"), clock.now()))
    async with asyncio.timeout(20):  # a hang, not a speed check: it used to take minutes
        jobs = await engine.claim(8)
    assert len(jobs) == 8
    assert len({job.run_id for job in jobs}) == 8


async def test_without_chat_runs_have_no_thread_and_chat_steps_fail_saying_so(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The null chat: a run's thread is skipped (its steps still run); a step that must
    post fails its run with one clear line; the missing chat is logged once, then counted."""
    clock = ManualClock()
    quiet = workflow("""
        name: silent
        channel: "#ops"
        steps:
          - {id: a, set: {x: 1}}
    """)
    posting = workflow("""
        name: posting
        channel: "#ops"
        steps:
          - {id: tell, post: {channel: "#ops", text: hello}}
    """)
    chat = NullChat()
    engine = make_engine(store, clock, quiet, posting, chat=chat)
    with caplog.at_level(logging.DEBUG, logger="workflows.null_chat"):
        silent_run = await start(engine, "silent")
        posting_run = await start(engine, "posting")
        await drain(engine)
    silent, failed = await run_row(store, silent_run), await run_row(store, posting_run)
    assert (silent.status, silent.root_ts, silent.context["steps"]) == (
        "succeeded",
        None,
        {"a": {"x": 1}},
    )
    assert (failed.status, failed.error) == ("failed", "no chat is configured")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "chat is not configured" in warnings[0].getMessage()
    assert chat.refused > 1, "later refusals are counted, not warned again"
