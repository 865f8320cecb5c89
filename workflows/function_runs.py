"""Workflow Builder steps: a run started by a ``function_executed`` event tells Slack its end.

Slack's custom steps (https://docs.slack.dev/tools/bolt-python/concepts/custom-steps,
https://docs.slack.dev/reference/events/function_executed/): a workflow built in Workflow
Builder calls one of the app's manifest ``functions``; the app receives a
``function_executed`` event (its ``function_execution_id``, ``inputs`` and a
``bot_access_token`` for that execution) and ends the step with
``functions.completeSuccess`` (outputs, https://api.slack.com/methods/functions.completeSuccess)
or ``functions.completeError`` (a message). The workflow waits meanwhile, for days if need be.

Here: the start writes a ``function_runs`` row with the run (``StartRequest.function``); the
transaction that ends the run sets its ``ending`` and queues the ``ended`` job
(``mark_endings``, called by ``workflows/lifecycle.close_owned``); that job calls
``FunctionEndings.complete``, which tells Slack exactly once, like an outbox message:

- a claim (``claimed_until``) lets one job call at a time; a claim that lapses (its worker
  died mid-call) is taken over, and a job that finds it held is retried later;
- a retryable failure (429, 5xx, no connection) releases the claim and retries the job;
- ``completed_at`` is written once Slack answered, and the token is forgotten then: a job
  that runs again finds the row completed and calls nothing;
- the crash window between Slack accepting and the record: the next call is answered
  ``execution_not_in_running_state`` (``FunctionGone``), recorded as ``gone``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from workflows.language.workflow import Workflow
from workflows.ports import ChatError, Clock
from workflows.store import Store
from workflows.tables import FunctionRunRow, RunRow

log = logging.getLogger(__name__)

RUN_WORKFLOW = "run_workflow"
"""Manifest callback id of "Run a Switchboard workflow" (inputs workflow, text, requester)."""
ASK_APPROVAL = "ask_for_approval"
"""Manifest callback id of "Ask for approval" (inputs approvers, text)."""
APPROVAL_WORKFLOW = Workflow.model_validate(
    {
        "name": "workflow-builder-approval",
        "title": "Approval asked in Workflow Builder",
        "description": "The 'Ask for approval' step: one approval, its outcome the step's output.",
        "steps": [
            {
                "id": "approval",
                "approve": {
                    "approvers": ["{{ input.approvers }}"],
                    # A channel if the step names one, else a DM to the first approver.
                    "channel": "{{ input.step_channel or ('@' ~ input.approvers[0]) }}",
                    "title": "Approval needed",
                    "summary": "{{ input.text }}",
                    "not_requester": True,
                },
            }
        ],
    }
)
"""What "Ask for approval" runs: not a file in the workflows folder (not listed, not
reloaded); its version is recorded at start-up so any worker finds it by its digest."""
CLAIM_SECONDS = 60.0
RETRY_MAX_SECONDS = 300.0
OUTPUTS_CHARS = 4000
"""The ``outputs`` text (the run's step outputs as JSON) is cut here."""

_FUNCTION_RUNS = cast(Table, FunctionRunRow.__table__)


class FunctionGone(Exception):
    """Slack no longer has this execution running (completed already, or unknown)."""


class FunctionCompleter(Protocol):
    """Slack's two ways to end a step (``bot/function_steps.py`` over the Web API).

    Raise ``FunctionGone`` when Slack says the execution is not running any more, and
    ``ChatError`` (``retryable``) for other failures."""

    async def complete_success(
        self, execution_id: str, token: str | None, outputs: Mapping[str, Any]
    ) -> None: ...

    async def complete_error(self, execution_id: str, token: str | None, error: str) -> None: ...

    async def display_name(self, user_id: str) -> str:
        """The person as Slack shows them (an error text is plain: a mention would be an id)."""
        ...


async def mark_endings(conn: AsyncConnection, endings: Sequence[tuple[str, str]]) -> set[str]:
    """In a run's ending transaction: record (run id, ending) on its function row; the run
    ids that have one (they get an ``ended`` job even for a plain success)."""
    marked: set[str] = set()
    for status in sorted({status for _, status in endings}):
        ids = [run_id for run_id, ending in endings if ending == status]
        rows = await conn.execute(
            update(_FUNCTION_RUNS)
            .where(_FUNCTION_RUNS.c.run_id.in_(ids), _FUNCTION_RUNS.c.completed_at.is_(None))
            .values(ending=status)
            .returning(_FUNCTION_RUNS.c.run_id)
        )
        marked.update(row.run_id for row in rows)
    return marked


@dataclass(frozen=True)
class Completion:
    """What Slack is told: outputs (success) or an error message."""

    outputs: dict[str, Any] | None = None
    error: str | None = None


def completion_for(
    callback_id: str, run: RunRow, ending: str, names: Mapping[str, str] | None = None
) -> Completion:
    """The step's outputs (as the manifest declares them) or its error, from the ended run;
    ``names``: display names of the people an error text names (else their ids)."""
    steps = run.context.get("steps") or {}
    decision = _last_decision(steps)
    if names and decision.get("decided_by") in names:
        decision = {**decision, "by_name": names[str(decision["decided_by"])]}
    if callback_id == ASK_APPROVAL:
        if ending in ("succeeded", "rejected", "timed_out"):
            outcome = str(
                decision.get("outcome") or ("approved" if ending == "succeeded" else ending)
            )
            outputs: dict[str, Any] = {"outcome": outcome}
            if decision.get("decided_by"):
                outputs["decided_by"] = str(decision["decided_by"])
            return Completion(outputs=outputs)
        return Completion(error=_error_text("The approval", run, ending, decision))
    if ending != "succeeded":
        return Completion(
            error=_error_text(f"Switchboard workflow {run.workflow}", run, ending, decision)
        )
    text = json.dumps(steps, default=str, sort_keys=True)
    outputs = {"outcome": ending, "run_id": run.id, "outputs": text[:OUTPUTS_CHARS]}
    if decision.get("decided_by"):
        outputs["decided_by"] = str(decision["decided_by"])
    return Completion(outputs=outputs)


def _last_decision(steps: Mapping[str, Any]) -> Mapping[str, Any]:
    decided = [s for s in steps.values() if isinstance(s, Mapping) and s.get("decided_by")]
    return decided[-1] if decided else {}


def _error_text(what: str, run: RunRow, ending: str, decision: Mapping[str, Any]) -> str:
    if ending == "rejected":
        by = decision.get("by_name") or decision.get("decided_by")
        reason = decision.get("reason")
        said = f" by {by}" if by else ""
        return (
            f"{what} was rejected{said}" + (f": {reason}" if reason else "") + f" (run {run.id})."
        )
    if ending == "failed":
        at = f" at step {run.current_step}" if run.current_step else ""
        return f"{what} failed{at}: {run.error or 'no reason recorded'} (run {run.id})."
    return f"{what} was {ending.replace('_', ' ')} (run {run.id})."


class FunctionEndings:
    """Tells Slack how a function run ended, once (see the module's notes)."""

    def __init__(self, store: Store, completer: FunctionCompleter, clock: Clock) -> None:
        self.store = store
        self.completer = completer
        self.clock = clock

    async def complete(self, run: RunRow, attempt: int) -> float | None:
        """Called by the run's ``ended`` job: None when done (or nothing to do), else the
        seconds after which to try again. Slack must hear of the end however long it is
        away, so a retryable failure is retried without a limit (at most every 5 minutes)."""
        try:
            await self._complete(run)
        except ChatError as exc:
            log.info("Workflow Builder step not completed yet: %s", exc)
            return min(2.0**attempt, RETRY_MAX_SECONDS)
        return None

    async def _complete(self, run: RunRow) -> None:
        claimed = await self._claim(run.id)
        if claimed is None:
            return
        execution_id, callback_id, token, ending = claimed
        decider = _last_decision(run.context.get("steps") or {}).get("decided_by")
        names = {}
        if ending == "rejected" and decider and decider != "timeout":
            names[str(decider)] = await self.completer.display_name(str(decider))
        completion = completion_for(callback_id, run, ending, names)
        try:
            outcome = await self._tell(execution_id, token, completion)
        except ChatError as exc:
            if exc.retryable:
                await self._release(execution_id)
                raise
            # Slack refused even the error (not retryable): recorded, never called again.
            log.warning("could not complete a Workflow Builder step: %s", exc)
            outcome = "refused"
        await self._record(execution_id, outcome)

    async def _tell(self, execution_id: str, token: str | None, completion: Completion) -> str:
        try:
            if completion.outputs is not None:
                try:
                    await self.completer.complete_success(execution_id, token, completion.outputs)
                    return "success"
                except ChatError as exc:
                    if exc.retryable:
                        raise
                    # Outputs Slack refused (parameter_validation_failed): the step still ends.
                    log.warning("function outputs refused", extra={"execution": execution_id})
                    error = f"Switchboard could not send this step's outputs: {exc}"
                    completion = Completion(error=error)
            await self.completer.complete_error(execution_id, token, str(completion.error))
            return "error"
        except FunctionGone:
            return "gone"

    async def _claim(self, run_id: str) -> tuple[str, str, str | None, str] | None:
        now = self.clock.now()
        async with self.store.transaction() as session:
            row = await session.scalar(
                select(FunctionRunRow).where(FunctionRunRow.run_id == run_id).with_for_update()
            )
            if row is None or row.completed_at is not None or row.ending is None:
                return None  # not a function run, or Slack was told already
            if row.claimed_until is not None and row.claimed_until > now:
                raise ChatError("another worker is completing this step", retryable=True)
            row.claimed_until = now + timedelta(seconds=CLAIM_SECONDS)
            row.attempts += 1
            return row.execution_id, row.callback_id, row.token, row.ending

    async def _release(self, execution_id: str) -> None:
        async with self.store.transaction() as session:
            await session.execute(
                update(FunctionRunRow)
                .where(FunctionRunRow.execution_id == execution_id)
                .values(claimed_until=None)
            )

    async def _record(self, execution_id: str, outcome: str) -> None:
        now: datetime = self.clock.now()
        async with self.store.transaction() as session:
            await session.execute(
                update(FunctionRunRow)
                .where(FunctionRunRow.execution_id == execution_id)
                .values(completion=outcome, completed_at=now, claimed_until=None, token=None)
            )
