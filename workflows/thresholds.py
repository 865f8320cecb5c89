"""Threshold triggers: check a number on a schedule, start the workflow when it crosses a line.

::

    triggers:
      - threshold: {every: 1m, http: {connection: metrics, path: /queue, select: depth},
                    above: 5, clear: 4}

Hysteresis: the trigger starts *armed*. A check whose value is past the
threshold (``> above`` or ``< below``) fires once and disarms it; it re-arms
only when a later value is back at ``clear`` or beyond (``<= clear`` for
``above``, ``>= clear`` for ``below``; ``clear`` defaults to the threshold).
A value already past the threshold at the first check fires.

Many processes, one fire per crossing: the state row carries a ``generation``
that each re-arm increments, and a fire starts its run with
``dedupe_key = threshold:{workflow}:{index}:{generation}``, so concurrent
checkers (or a checker that died between starting the run and recording the
fire) start one run. Each check first claims the row (``checked_at`` older
than 0.9 x ``every``), so N processes make about one outside call per interval.

The value is read through the connector registry: an ``http`` source's
``select``-ed JSON value, or the first column of the first row of a ``sql``
query. A read that fails or is not a number is recorded on the state row
(``last_error``) and logged; the state does not change.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from connectors.errors import ConnectorError
from connectors.registry import ConnectorRegistry
from workflows.language.triggers import ThresholdSpec, ThresholdTrigger
from workflows.language.workflow import Workflow
from workflows.ports import Clock
from workflows.runs import Started, StartRequest, start_run
from workflows.store import Store
from workflows.tables import ThresholdStateRow

log = logging.getLogger(__name__)

CLAIM_FRACTION = 0.9
"""A check is skipped when another process checked within this fraction of ``every``."""


class Transition(enum.Enum):
    STAY = "stay"
    FIRE = "fire"
    REARM = "rearm"


def transition(spec: ThresholdSpec, armed: bool, value: float) -> Transition:
    """The hysteresis step: what a new ``value`` does to a trigger that is ``armed`` or not."""
    if spec.above is not None:
        crossed, cleared = value > spec.above, value <= _clear_level(spec)
    else:
        assert spec.below is not None
        crossed, cleared = value < spec.below, value >= _clear_level(spec)
    if armed and crossed:
        return Transition.FIRE
    if not armed and cleared:
        return Transition.REARM
    return Transition.STAY


def _clear_level(spec: ThresholdSpec) -> float:
    if spec.clear is not None:
        return spec.clear
    level = spec.above if spec.above is not None else spec.below
    assert level is not None
    return level


@dataclass(frozen=True)
class ThresholdEntry:
    """One ``threshold`` trigger: the ``index``-th trigger of ``workflow``."""

    workflow: Workflow
    index: int
    spec: ThresholdSpec

    @property
    def job_id(self) -> str:
        return f"threshold:{self.workflow.name}:{self.index}"


def threshold_entries(workflows: Iterable[Workflow]) -> list[ThresholdEntry]:
    return [
        ThresholdEntry(workflow, index, trigger.threshold)
        for workflow in workflows
        for index, trigger in enumerate(workflow.triggers)
        if isinstance(trigger, ThresholdTrigger)
    ]


class ThresholdReadError(Exception):
    """The value could not be read or is not a number; the message is fit for operators."""


@dataclass(frozen=True)
class CheckResult:
    checked: bool
    """False when another process checked within the interval (nothing was read)."""
    value: float | None = None
    error: str | None = None
    transition: Transition = Transition.STAY
    started: Started | None = None


@dataclass(frozen=True)
class _Claim:
    armed: bool
    generation: int


class ThresholdChecker:
    """Runs one check of a threshold: claim, read, apply hysteresis, maybe start a run."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        connectors: ConnectorRegistry | None,
        *,
        wakeup: asyncio.Event | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.connectors = connectors
        self.wakeup = wakeup

    async def check(self, entry: ThresholdEntry) -> CheckResult:
        claim = await self._claim(entry, self.clock.now())
        if claim is None:
            return CheckResult(checked=False)
        try:
            value = await read_value(entry.spec, self.connectors)
        except ThresholdReadError as exc:
            log.warning(
                "threshold check failed: %s",
                exc,
                extra={"workflow": entry.workflow.name, "trigger": entry.index},
            )
            await self._record(entry, claim, last_error=str(exc))
            return CheckResult(checked=True, error=str(exc))
        step = transition(entry.spec, claim.armed, value)
        started = None
        if step is Transition.FIRE:
            started = await self._fire(entry, claim, value)
        elif step is Transition.REARM:
            await self._record(
                entry, claim, last_value=value, armed=True, generation=claim.generation + 1
            )
        else:
            await self._record(entry, claim, last_value=value)
        return CheckResult(checked=True, value=value, transition=step, started=started)

    async def _claim(self, entry: ThresholdEntry, now: datetime) -> _Claim | None:
        """Take this interval's check, creating the state row on the very first one."""
        recent = now - timedelta(seconds=entry.spec.every * CLAIM_FRACTION)
        key = _key(entry)
        stmt = (
            update(ThresholdStateRow)
            .where(
                *key,
                or_(ThresholdStateRow.checked_at.is_(None), ThresholdStateRow.checked_at <= recent),
            )
            .values(checked_at=now, updated_at=now)
            .returning(ThresholdStateRow.armed, ThresholdStateRow.generation)
        )
        try:
            async with self.store.transaction() as session:
                row = (await session.execute(stmt)).first()
                if row is not None:
                    return _Claim(armed=row.armed, generation=row.generation)
                if await session.scalar(select(ThresholdStateRow.generation).where(*key)) is None:
                    session.add(
                        ThresholdStateRow(
                            workflow=entry.workflow.name,
                            trigger_index=entry.index,
                            armed=True,
                            generation=0,
                            checked_at=now,
                            updated_at=now,
                        )
                    )
                    await session.flush()
                    return _Claim(armed=True, generation=0)
        except IntegrityError:
            pass  # another process created the row, and so took this first check
        return None

    async def _fire(self, entry: ThresholdEntry, claim: _Claim, value: float) -> Started:
        spec = entry.spec
        request = StartRequest(
            workflow=entry.workflow,
            source="threshold",
            text="",
            dedupe_key=f"threshold:{entry.workflow.name}:{entry.index}:{claim.generation}",
            input={
                "value": value,
                "threshold": {
                    "value": value,
                    "above": spec.above,
                    "below": spec.below,
                    "clear": _clear_level(spec),
                    "connection": spec.connection,
                },
            },
        )
        now = self.clock.now()
        started = await start_run(self.store, request, now)
        # Recorded after the run exists: a crash in between leaves the trigger armed, and the
        # next check's fire finds this run by its dedupe key instead of starting another.
        await self._record(
            entry, claim, last_value=value, armed=False, fired_at=now, last_run_id=started.run_id
        )
        if self.wakeup is not None and not started.duplicate:
            self.wakeup.set()
        log.info(
            "threshold fired",
            extra={"workflow": entry.workflow.name, "run_id": started.run_id, "value": value},
        )
        return started

    async def _record(self, entry: ThresholdEntry, claim: _Claim, **values: Any) -> None:
        """Write the outcome unless another process moved the state on meanwhile."""
        values.setdefault("last_error", None)
        values["updated_at"] = self.clock.now()
        async with self.store.transaction() as session:
            await session.execute(
                update(ThresholdStateRow)
                .where(
                    *_key(entry),
                    ThresholdStateRow.generation == claim.generation,
                    ThresholdStateRow.armed == claim.armed,
                )
                .values(**values)
            )


def _key(entry: ThresholdEntry) -> tuple[Any, ...]:
    return (
        ThresholdStateRow.workflow == entry.workflow.name,
        ThresholdStateRow.trigger_index == entry.index,
    )


async def read_value(spec: ThresholdSpec, connectors: ConnectorRegistry | None) -> float:
    """The number the threshold watches, read through the named connection."""
    if connectors is None:
        raise ThresholdReadError("no connections are configured")
    try:
        if spec.http is not None:
            result = await connectors.http(spec.http.connection).request(
                spec.http.method,
                spec.http.path,
                query=spec.http.query or None,
                json=spec.http.json_body,
                select=spec.http.select,
            )
            raw: Any = result.data
        else:
            assert spec.sql is not None
            rows = (
                await connectors.sql(spec.sql.connection).query(spec.sql.query, spec.sql.params)
            ).rows
            if not rows or not rows[0]:
                raise ThresholdReadError(f"[{spec.sql.connection}] the query returned no rows")
            raw = next(iter(rows[0].values()))
    except ConnectorError as exc:
        raise ThresholdReadError(str(exc)) from None
    return as_number(raw)


def as_number(raw: Any) -> float:
    """A finite number from a JSON/SQL value (numeric strings included), or ThresholdReadError."""
    if isinstance(raw, bool):
        raise ThresholdReadError(f"value is a boolean, not a number: {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ThresholdReadError(f"value is not a number: {str(raw)[:60]!r}") from None
    if not math.isfinite(value):
        raise ThresholdReadError(f"value is not finite: {value}")
    return value
