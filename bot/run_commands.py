"""``switchboard cancel`` and ``switchboard retry``: operator actions on one run (actor "cli")."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

import typer

from bot.cli_support import fail, settings
from bot.cli_support import run as run_sync
from bot.db_ready import ready_store
from bot.settings import Settings
from connectors.secrets import Scrubber
from workflows import runs
from workflows.loader import load_folder
from workflows.store import Store


@contextlib.asynccontextmanager
async def _operating_on(run_id: str, config: Settings) -> AsyncIterator[Store]:
    """The store for an action on ``run_id``; a missing run or a refusal is one line."""
    store = await ready_store(config)
    try:
        yield store
    except runs.RunNotFound:
        fail(f"no run {run_id}")
    except runs.RunStateError as exc:
        fail(str(exc))
    finally:
        await store.dispose()


def cancel_command(run_id: str) -> None:
    """Cancel a run."""

    async def cancel() -> str:
        async with _operating_on(run_id, settings()) as store:
            cancelled = await runs.cancel_run(store, run_id, "cli", datetime.now().astimezone())
        return f"run {cancelled.id}: {cancelled.status}"

    typer.echo(run_sync(cancel()))


def retry_command(
    run_id: str,
    from_step: Annotated[
        str | None, typer.Option("--from", help="Re-run from this step; earlier outputs kept")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail")] = None,
) -> None:
    """Resume a failed or cancelled run where it stopped, or re-run any finished run from a step."""
    typer.echo(run_sync(_retry(run_id, from_step, reason)))


async def _retry(run_id: str, from_step: str | None, reason: str | None) -> str:
    """With ``--from``, the run's definition (from SWITCHBOARD_WORKFLOWS) gives the order."""
    config = settings()
    now = datetime.now().astimezone()
    async with _operating_on(run_id, config) as store:
        if from_step is None and reason is None:
            retried = await runs.retry_run(store, run_id, "cli", now)
            return f"run {retried.id}: {retried.status}"
        found = await runs.get_run(store, run_id)
        workflow = load_folder(config.workflows_dir).workflows.get(found.workflow)
        if from_step is not None and workflow is None:
            fail(f"workflow {found.workflow} of run {run_id} is not in {config.workflows_dir}")
        note = {"reason": Scrubber().text(reason)[:200]} if reason else {}
        retried = await runs.retry_run(
            store, run_id, "cli", now, from_step=from_step, workflow=workflow, note=note
        )
    return f"run {retried.id}: {retried.status} from {retried.current_step}"
