"""``foreach``: a step per item, bounded concurrency, results in order, failure policies.

Driven through the real engine job by job on SQLite and PostgreSQL, with the inner
steps calling a real HTTP stand-in, so retries and per-item idempotency keys are what
a server sees.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from tests.fanout.support import Sources, registry
from tests.support.clock import ManualClock
from tests.support.engines import drain, make_engine, run_row, start, workflow
from tests.support.servers import serve_asgi
from workflows.jobs import ITEM_JOB
from workflows.steps.base import Services
from workflows.store import Store
from workflows.tables import AuditRow, JobRow

DOUBLE = """
name: each
steps:
  - id: each
    foreach:
      items: "{{ input.text.split(',') | map('int') | list }}"
      concurrency: 3
      do:
        set: {doubled: "{{ item * 2 }}", at: "{{ index }}"}
  - id: after
    set: {total: "{{ steps.each.results | map(attribute='doubled') | sum }}"}
"""

FETCH = """
name: fetch
steps:
  - id: each
    foreach:
      items: "{{ input.text.split(',') }}"
      concurrency: 2
      on_failure: POLICY
      do:
        retry: {attempts: 2, initial: 0.01, jitter: false}
        http: {connection: data, path: "/items/{{ item }}"}
  - id: after
    set: {failed: "{{ steps.each.failed }}"}
"""


async def _item_jobs(store: Store, run_id: str) -> list[JobRow]:
    async with store.read() as session:
        query = select(JobRow).where(JobRow.run_id == run_id, JobRow.kind == ITEM_JOB)
        return list((await session.scalars(query)).all())


async def test_results_come_back_in_order_with_bounded_concurrency(store: Store) -> None:
    engine = make_engine(store, ManualClock(), workflow(DOUBLE))
    run_id = await start(engine, "each", "5,1,4,2,3,9,7")
    (job,) = await engine.claim(10)
    assert await engine.execute(job) is None  # the fan-out: the run waits for its items
    waiting = await run_row(store, run_id)
    assert waiting.status == "waiting"
    assert waiting.context["steps"]["each"]["items"] == [5, 1, 4, 2, 3, 9, 7]
    assert sorted(j.payload["index"] for j in await _item_jobs(store, run_id)) == [0, 1, 2]

    await drain(engine)
    run = await run_row(store, run_id)
    assert run.status == "succeeded", run.error
    results = run.context["steps"]["each"]["results"]
    assert results == [{"doubled": 2 * n, "at": i} for i, n in enumerate([5, 1, 4, 2, 3, 9, 7])]
    assert run.context["steps"]["each"]["failed"] == 0
    assert run.context["steps"]["after"]["total"] == 62
    jobs = await _item_jobs(store, run_id)
    assert Counter(j.payload["index"] for j in jobs) == dict.fromkeys(range(7), 1)
    assert {j.status for j in jobs} == {"done"}


async def test_an_empty_list_runs_nothing_and_moves_on(store: Store) -> None:
    source = DOUBLE.replace("input.text.split(',') | map('int') | list", "[]")
    engine = make_engine(store, ManualClock(), workflow(source))
    run_id = await start(engine, "each", "")
    await drain(engine)
    run = await run_row(store, run_id)
    assert run.status == "succeeded", run.error
    assert run.context["steps"]["each"] == {"items": [], "results": [], "errors": [], "failed": 0}
    assert await _item_jobs(store, run_id) == []


async def test_items_that_are_not_a_list_fail_the_step_with_a_clear_error(store: Store) -> None:
    source = DOUBLE.replace("input.text.split(',') | map('int') | list", "input.text")
    engine = make_engine(store, ManualClock(), workflow(source))
    run_id = await start(engine, "each", "abc")
    await drain(engine)
    run = await run_row(store, run_id)
    assert run.status == "failed"
    assert run.error == "foreach items must be a list, not str"


async def test_collect_retries_each_item_on_its_own_and_lists_the_failures(store: Store) -> None:
    sources = Sources()
    sources.fail_first = {"b": 1}  # fails once, then its own retry succeeds
    sources.always_fail = {"bad"}
    async with serve_asgi(sources.asgi_app) as url:
        connectors = registry(url)
        clock = ManualClock()
        wf = workflow(FETCH.replace("POLICY", "collect"))
        engine = make_engine(store, clock, wf, services=Services(connectors=connectors))
        run_id = await start(engine, "fetch", "a,b,bad,dd")
        await drain(engine)
        clock.advance(1)  # past the retry's back-off
        await drain(engine)
        await connectors.aclose()
    run = await run_row(store, run_id)
    assert run.status == "succeeded", run.error
    out = run.context["steps"]["each"]
    assert [r and r["data"]["name"] for r in out["results"]] == ["a", "b", None, "dd"]
    assert out["failed"] == 1 and out["errors"][0]["index"] == 2
    assert "422" in out["errors"][0]["error"]
    assert sources.deliveries == {"a": 1, "b": 2, "bad": 1, "dd": 1}  # a 422 is final
    # Each item is its own request: its own Idempotency-Key, reused by its retry.
    assert sources.keys == {
        f"{run_id}:each.0": 1,
        f"{run_id}:each.1": 2,
        f"{run_id}:each.2": 1,
        f"{run_id}:each.3": 1,
    }
    async with store.read() as session:
        actions = Counter(
            (await session.scalars(select(AuditRow.action).where(AuditRow.run_id == run_id))).all()
        )
    assert actions["item.completed"] == 3 and actions["item.failed"] == 1
    assert actions["step.retry"] == 1  # b's 503; bad's 422 is not retried


async def test_fail_fast_fails_the_run_and_drops_the_items_not_started(store: Store) -> None:
    sources = Sources()
    sources.always_fail = {"bad"}
    async with serve_asgi(sources.asgi_app) as url:
        connectors = registry(url)
        clock = ManualClock()
        engine = make_engine(
            store,
            clock,
            workflow(FETCH.replace("POLICY", "fail_fast")),
            services=Services(connectors=connectors),
        )
        run_id = await start(engine, "fetch", "bad,x,y,z,w,v")
        for _ in range(3):
            await drain(engine)
            clock.advance(1)
        await connectors.aclose()
    run = await run_row(store, run_id)
    assert run.status == "failed"
    assert run.error is not None and run.error.startswith("item 0 failed:")
    assert "after" not in run.context["steps"]
    jobs = await _item_jobs(store, run_id)
    assert {j.status for j in jobs} <= {"done", "failed", "cancelled"}
    assert len(jobs) < 6  # the lanes stopped: not every item was started
