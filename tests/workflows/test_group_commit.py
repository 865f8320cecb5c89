"""Group commit and audit sealing, on both backends.

Each completion in a batch keeps its own checks (lease, run version); a bad one
does not sink the others; runs started together share a commit and a duplicate
among them is still recognised; the audit chain sealed after commit never
forks, even with sealers racing in two stores.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import event, func, select, update

from tests.support.clock import ManualClock
from tests.support.engines import drain, make_engine, run_row, start, workflow
from tests.support.stores import Database
from workflows import audit
from workflows.completion import Committer, Completion, Landed, job_values
from workflows.runs import StartRequest, start_run
from workflows.store import Store
from workflows.tables import AuditRow, JobRow, RunRow

OWNER = "w-1"


async def leased_jobs(store: Store, clock: ManualClock, count: int) -> list[tuple[JobRow, int]]:
    """``count`` runs of a one-step workflow, each with its job leased to OWNER (attempt 1)."""
    wf = workflow("""
        name: one
        steps:
          - {id: a, quiet: true, set: {x: 1}}
    """)
    engine = make_engine(store, clock, wf)
    for _ in range(count):
        await start(engine, "one")
    async with store.transaction() as session:
        await session.execute(
            update(JobRow).values(
                status="leased",
                lease_owner=OWNER,
                attempt=1,
                lease_expires_at=clock.now() + timedelta(seconds=30),
            )
        )
        jobs = (await session.scalars(select(JobRow).order_by(JobRow.id))).all()
        versions = {r.id: r.version for r in (await session.scalars(select(RunRow))).all()}
    return [(job, versions[job.run_id]) for job in jobs]


def completion(job: JobRow, version: int, clock: ManualClock, **run_values: object) -> Completion:
    now = clock.now()
    record = audit.record(
        run_id=job.run_id, step_id="a", actor="switchboard", action="step.completed",
        detail={}, now=now,
    )  # fmt: skip
    return Completion(
        job.id,
        1,
        job.run_id,
        version,
        {"version": version + 1, "updated_at": now, **run_values},
        [record],
        [job_values(job.run_id, "b", "step", now, now)],
    )


async def test_each_completion_in_a_batch_keeps_its_own_checks(store: Store) -> None:
    clock = ManualClock()
    (good, v1), (stolen, v2), (moved, v3) = await leased_jobs(store, clock, 3)
    async with store.transaction() as session:  # another worker took one over; one run moved
        await session.execute(
            update(JobRow).where(JobRow.id == stolen.id).values(lease_owner="w-2")
        )
        await session.execute(
            update(RunRow).where(RunRow.id == moved.run_id).values(version=v3 + 5)
        )
    committer = Committer(store, clock, OWNER)
    results = await asyncio.gather(
        committer.commit(completion(good, v1, clock, status="running")),
        committer.commit(completion(stolen, v2, clock, status="running")),
        committer.commit(completion(moved, v3, clock, status="running")),
    )
    assert [r.landed for r in results] == [Landed.DONE, Landed.LEASE_LOST, Landed.RUN_MOVED]
    assert len(results[0].job_ids) == 1
    async with store.read() as session:
        jobs = {j.id: j for j in (await session.scalars(select(JobRow))).all()}
        audited = await session.scalar(
            select(func.count()).select_from(AuditRow).where(AuditRow.action != "run.started")
        )
    assert jobs[good.id].status == "done"
    assert jobs[results[0].job_ids[0]].step_id == "b"
    assert jobs[stolen.id].status == "leased" and jobs[stolen.id].lease_owner == "w-2"
    assert jobs[moved.id].status == "queued", "runs again on the run as it is now"
    assert audited == 1, "only the step that landed is audited"
    assert (await run_row(store, good.run_id)).version == v1 + 1
    assert (await run_row(store, moved.run_id)).version == v3 + 5


async def test_a_bad_completion_does_not_sink_the_batch(store: Store) -> None:
    clock = ManualClock()
    (first, v1), (second, v2) = await leased_jobs(store, clock, 2)
    committer = Committer(store, clock, OWNER)
    bad = completion(second, v2, clock)
    bad.new_jobs[0]["step_id"] = None  # NOT NULL: this insert fails
    results = await asyncio.gather(
        committer.commit(completion(first, v1, clock)),
        committer.commit(bad),
        return_exceptions=True,
    )
    assert getattr(results[0], "landed", None) is Landed.DONE
    assert isinstance(results[1], Exception)
    async with store.read() as session:
        statuses = dict((await session.execute(select(JobRow.id, JobRow.status))).all())
    assert statuses[first.id] == "done"
    assert statuses[second.id] == "leased", "left to its lease, to run again"


async def test_a_worker_batch_of_runs_lands_every_step_once(store: Store) -> None:
    clock = ManualClock()
    wf = workflow("""
        name: three
        steps:
          - {id: a, quiet: true, set: {x: "{{ input.text }}"}}
          - {id: b, quiet: true, set: {y: "{{ steps.a.x }}-b"}}
          - {id: c, quiet: true, set: {z: "{{ steps.b.y }}-c"}}
    """)
    engine = make_engine(store, clock, wf)
    run_ids = [await start(engine, "three", str(i)) for i in range(40)]
    jobs = await engine.claim(40)
    assert len(jobs) == 40

    async def follow(job: object) -> int:
        steps = 0
        while job is not None:
            job = await engine.execute(job)  # type: ignore[arg-type]
            steps += 1
        return steps

    assert sum(await asyncio.gather(*(follow(job) for job in jobs))) == 120
    assert await drain(engine) == 0
    for i, run_id in enumerate(run_ids):
        run = await run_row(store, run_id)
        assert run.status == "succeeded"
        assert run.context["steps"]["c"] == {"z": f"{i}-b-c"}
    verified = await audit.verify(store)
    assert verified.ok and verified.records == 40 * (
        1 + 3 + 1
    )  # run.started, 3 steps, run.succeeded


async def test_racing_sealers_build_one_chain(database: Database, store: Store) -> None:
    clock = ManualClock()
    other = database.store()
    try:
        for round_ in range(5):
            async with store.transaction() as session:
                for i in range(60):
                    await audit.append(
                        session, run_id=None, step_id=None, actor="t", action=f"r{round_}.{i}",
                        detail={"i": i}, now=clock.now(),
                    )  # fmt: skip
            await asyncio.gather(
                audit.seal(store, batch=25), audit.seal(other, batch=25), audit.seal_all(other)
            )
        async with store.read() as session:
            chain = (await session.scalars(select(AuditRow.chain_seq))).all()
        assert sorted(chain) == list(range(1, 301)), "every record sealed once, no gap, no fork"
        verified = await audit.verify(store)
        assert verified.ok and verified.records == 300
    finally:
        await other.dispose()


async def test_runs_started_together_share_commits_and_dedupe_alone(store: Store) -> None:
    clock = ManualClock()
    wf = workflow("""
        name: one
        steps:
          - {id: a, set: {x: 1}}
    """)
    inserts: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("INSERT INTO runs"):
            inserts.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    fresh = await asyncio.gather(
        *(start_run(store, StartRequest(wf, "test", dedupe_key=f"evt-{n}"), clock.now())
          for n in range(1, 21))
    )  # fmt: skip
    event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    assert not any(s.duplicate for s in fresh)
    assert len(inserts) < 5, f"20 runs started at once took {len(inserts)} INSERTs"
    again = await asyncio.gather(
        *(start_run(store, StartRequest(wf, "test", dedupe_key=k), clock.now())
          for k in ["evt-21", "evt-1", "evt-22", "evt-21"])
    )  # fmt: skip
    assert [s.duplicate for s in again] == [False, True, False, True]
    assert again[1].run_id == fresh[0].run_id
    assert again[3].run_id == again[0].run_id
    async with store.read() as session:
        runs = await session.scalar(select(func.count()).select_from(RunRow))
    assert runs == 22
