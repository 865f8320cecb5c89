"""``switchboard cancel`` and ``switchboard retry``: operator actions on one run (actor "cli")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import typer

from bot.cli_support import fail, run, settings
from bot.db_ready import ready_store


def _run_operation(run_id: str, operation: Literal["cancel", "retry"]) -> None:
    from workflows import runs

    async def go() -> str:
        store = await ready_store(settings())
        try:
            fn = runs.cancel_run if operation == "cancel" else runs.retry_run
            run = await fn(store, run_id, "cli", datetime.now().astimezone())
            return f"run {run.id}: {run.status}"
        except runs.RunNotFound:
            fail(f"no run {run_id}")
            raise
        except runs.RunStateError as exc:
            fail(str(exc))
            raise
        finally:
            await store.dispose()

    typer.echo(run(go()))


def cancel_command(run_id: str) -> None:
    """Cancel a run."""
    _run_operation(run_id, "cancel")


def retry_command(
    run_id: str,
    from_step: Annotated[
        str | None, typer.Option("--from", help="Re-run from this step; earlier outputs kept")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail")] = None,
) -> None:
    """Resume a failed or cancelled run where it stopped, or re-run any finished run from a step."""
    if from_step is None and reason is None:
        _run_operation(run_id, "retry")
        return
    typer.echo(run(_retry_from(run_id, from_step, reason)))


async def _retry_from(run_id: str, from_step: str | None, reason: str | None) -> str:
    """``retry --from``: the run's definition (from SWITCHBOARD_WORKFLOWS) gives the order."""
    from connectors.secrets import Scrubber
    from workflows import runs
    from workflows.loader import load_folder

    config = settings()
    store = await ready_store(config)
    try:
        run = await runs.get_run(store, run_id)
        workflow = load_folder(config.workflows_dir).workflows.get(run.workflow)
        if from_step is not None and workflow is None:
            fail(f"workflow {run.workflow} of run {run_id} is not in {config.workflows_dir}")
        note = {"reason": Scrubber().text(reason)[:200]} if reason else {}
        now = datetime.now().astimezone()
        run = await runs.retry_run(
            store, run_id, "cli", now, from_step=from_step, workflow=workflow, note=note
        )
        return f"run {run.id}: {run.status} from {run.current_step}"
    except runs.RunNotFound:
        fail(f"no run {run_id}")
        raise
    except runs.RunStateError as exc:
        fail(str(exc))
        raise
    finally:
        await store.dispose()
