"""Issue 16 item 8: the purge also runs on a schedule in the workers. A process that runs
workers but no scheduler (``switchboard worker``, ``serve --no-scheduler``) purges expired
runs at start and hourly; both it and the scheduler's hourly purge use the policy of the
definitions loaded now, so a reload that adds ``retention:`` counts without a restart."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from tests.operator.test_retention import BRIEF, NOW, every_row, folder, run_at
from tests.support.harness import running_bot
from tests.support.stores import Database
from workflows.tables import AuditRow


async def test_a_worker_without_a_scheduler_purges_expired_runs(
    database: Database, tmp_path: Path
) -> None:
    workflows = folder(tmp_path)
    store = database.store()
    try:
        await run_at(store, NOW - timedelta(days=200), "keep", ["old-w-0", "old-w-1"])
        await run_at(store, NOW - timedelta(days=60), "brief", ["brief-w-0"])  # its own 30 days
        await run_at(store, NOW - timedelta(days=1), "keep", ["recent-w-0"])
    finally:
        await store.dispose()
    async with running_bot(
        database, workflows_dir=workflows, SWITCHBOARD_RETENTION_DAYS=90
    ) as harness:
        assert not harness.settings.run_scheduler

        async def purged() -> list[AuditRow] | None:
            async with harness.runtime.store.read() as session:
                rows = await session.scalars(
                    select(AuditRow).where(AuditRow.action == "retention.purge")
                )
                return list(rows.all()) or None

        (record,) = await harness.slack.wait_for(purged, message="the worker never purged")
        assert record.actor == "worker" and record.detail["runs"] == 3
        after = await every_row(harness.runtime.store)
        assert "old-w-" not in after and "brief-w-0" not in after and "recent-w-0" in after


async def test_the_scheduled_purge_follows_a_reload_that_adds_retention(
    database: Database, tmp_path: Path
) -> None:
    workflows = folder(tmp_path)
    store = database.store()
    try:
        await run_at(store, NOW - timedelta(days=60), "keep", ["keep-r-0"])
    finally:
        await store.dispose()
    async with running_bot(database, workflows_dir=workflows) as harness:
        scheduler, watcher = harness.runtime.scheduler, harness.runtime.watcher
        assert scheduler is not None and watcher is not None
        assert await scheduler.purge_expired() == 0  # no retention anywhere: kept

        keep = BRIEF.replace("name: brief", "name: keep")  # keep now says 30 days
        (workflows / "keep.yaml").write_text(keep)
        await watcher.reload()
        assert await scheduler.purge_expired() == 1
        assert "keep-r-0" not in await every_row(harness.runtime.store)
