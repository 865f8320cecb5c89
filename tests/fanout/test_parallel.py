"""``parallel``: branches at once, each its own durable job with its own retries, then a join.

Driven through the real engine on SQLite and PostgreSQL, the branches calling a real
HTTP stand-in (``tests/fanout/support.py``) that fails on request.
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

GATHER = """
name: gather
steps:
  - id: gather
    parallel:
      join: JOIN
      steps:
        - id: ads
          retry: {attempts: 3, initial: 0.01, jitter: false}
          http: {connection: data, path: /sources/ads}
        - id: crm
          retry: {attempts: 3, initial: 0.01, jitter: false}
          http: {connection: data, path: /sources/crm}
  - id: report
    set:
      rows: >-
        {{ (steps.gather.ads.data.rows if steps.gather.ads else 0)
        + (steps.gather.crm.data.rows if steps.gather.crm else 0) }}
      winner: "{{ steps.gather.winner }}"
"""


async def _gather(store: Store, sources: Sources, join: str, rounds: int = 3) -> str:
    async with serve_asgi(sources.asgi_app) as url:
        connectors = registry(url)
        clock = ManualClock()
        wf = workflow(GATHER.replace("JOIN", join))
        engine = make_engine(store, clock, wf, services=Services(connectors=connectors))
        run_id = await start(engine, "gather")
        (job,) = await engine.claim(10)
        await engine.execute(job)
        # Both branches are queued at once and can be leased at once (the run's other jobs
        # wait their turn; a fan-out's items do not).
        both = await engine.claim(10)
        assert sorted((j.kind, j.payload["index"]) for j in both) == [(ITEM_JOB, 0), (ITEM_JOB, 1)]
        for branch in both:
            await engine.execute(branch)
        for _ in range(rounds):
            await drain(engine)
            clock.advance(1)
        await connectors.aclose()
    return run_id


async def test_a_gather_of_two_sources_where_one_fails_once_and_retries(store: Store) -> None:
    sources = Sources()
    sources.fail_first = {"crm": 1}
    run_id = await _gather(store, sources, "all")
    run = await run_row(store, run_id)
    assert run.status == "succeeded", run.error
    out = run.context["steps"]["gather"]
    assert out["ads"]["data"] == {"name": "ads", "rows": 3}
    assert out["crm"]["data"] == {"name": "crm", "rows": 3}
    assert out["errors"] == {} and out["winner"] is None
    assert run.context["steps"]["report"]["rows"] == 6
    assert sources.deliveries == {"ads": 1, "crm": 2}  # only the failed branch was retried
    assert sources.keys == {f"{run_id}:gather.ads": 1, f"{run_id}:gather.crm": 2}
    async with store.read() as session:
        records = (await session.scalars(select(AuditRow).where(AuditRow.run_id == run_id))).all()
    retries = [r.step_id for r in records if r.action == "step.retry"]
    assert retries == ["gather.crm"]
    assert Counter(r.action for r in records)["item.completed"] == 2


async def test_all_fails_when_a_branch_fails_for_good(store: Store) -> None:
    sources = Sources()
    sources.always_fail = {"crm"}
    run = await run_row(store, await _gather(store, sources, "all"))
    assert run.status == "failed"
    assert run.error is not None and run.error.startswith("branch crm failed:")


async def test_first_success_takes_the_first_branch_that_succeeds(store: Store) -> None:
    sources = Sources()
    sources.fail_first = {"ads": 1}  # ads is retried, so crm answers first
    run_id = await _gather(store, sources, "first_success")
    run = await run_row(store, run_id)
    assert run.status == "succeeded", run.error
    assert run.context["steps"]["gather"]["winner"] == "crm"
    assert run.context["steps"]["report"]["winner"] == "crm"
    async with store.read() as session:
        joins = (
            await session.scalars(
                select(JobRow).where(JobRow.run_id == run_id, JobRow.kind == "signal")
            )
        ).all()
    assert len(joins) == 1  # the late branch's success queued no second join


async def test_first_success_fails_only_when_every_branch_fails(store: Store) -> None:
    sources = Sources()
    sources.always_fail = {"ads", "crm"}
    run = await run_row(store, await _gather(store, sources, "first_success"))
    assert run.status == "failed"
    assert run.error is not None and run.error.startswith("every branch failed:")


async def test_a_branch_whose_worker_died_runs_again_and_is_recorded_once(store: Store) -> None:
    sources = Sources()
    async with serve_asgi(sources.asgi_app) as url:
        connectors = registry(url)
        clock = ManualClock()
        wf = workflow(GATHER.replace("JOIN", "all"))
        services = Services(connectors=connectors)
        dead = make_engine(store, clock, wf, services=services, owner="dead-worker")
        alive = make_engine(store, clock, wf, services=services, owner="live-worker")
        run_id = await start(dead, "gather")
        (job,) = await dead.claim(10)
        await dead.execute(job)
        stale = await dead.claim(10)  # both branches leased, then the worker "dies"
        assert len(stale) == 2
        clock.advance(dead.lease_seconds + 1)
        await drain(alive)  # the leases ran out: the live worker takes both over
        run = await run_row(store, run_id)
        assert run.status == "succeeded", run.error
        # The dead worker wakes up and finishes its old lease: its result is not recorded.
        await dead.execute(stale[0])
        await connectors.aclose()
    after = await run_row(store, run_id)
    assert (after.version, after.context) == (run.version, run.context)
    async with store.read() as session:
        actions = Counter(
            (await session.scalars(select(AuditRow.action).where(AuditRow.run_id == run_id))).all()
        )
    assert actions["item.completed"] == 2  # not 3: the stale execution recorded nothing
    assert actions["step.completed"] == 3  # the fan-out pass, its join, report
