"""What the examples' tests share: the running pieces and ways to look at what people see."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from sandbox.slack import SlackEmulator
from sandbox.standins import Standins
from tests.support.harness import Harness
from workflows.tables import JobRow, RunRow

JSON = dict[str, Any]


@dataclass
class Examples:
    harness: Harness
    standins: Standins

    @property
    def slack(self) -> SlackEmulator:
        return self.harness.slack

    async def message_in(self, channel: str, contains: str, timeout: float = 15) -> JSON:
        """The first top-level message in ``channel`` whose text contains ``contains``."""
        return await self.slack.wait_for(
            lambda: next(
                (m for m in self.slack.messages(channel) if contains in m.get("text", "")), None
            ),
            timeout=timeout,
            message=f"no message with {contains!r} in {channel}",
        )

    async def thread_says(
        self, channel: str, root_ts: str, contains: str, timeout: float = 15
    ) -> JSON:
        return await self.slack.wait_for(
            lambda: next(
                (
                    m
                    for m in self.slack.thread(channel, root_ts)[1:]
                    if contains in m.get("text", "")
                ),
                None,
            ),
            timeout=timeout,
            message=f"the thread never said {contains!r}",
        )

    async def finished(self, workflow: str, timeout: float = 15) -> RunRow:
        async def done() -> RunRow | None:
            async with self.harness.runtime.store.transaction() as session:
                run = (
                    await session.scalars(select(RunRow).where(RunRow.workflow == workflow))
                ).first()
            return run if run is not None and run.status not in ("running", "waiting") else None

        return await self.slack.wait_for(done, timeout=timeout, message=f"{workflow} not finished")

    async def run_of(self, workflow: str) -> RunRow:
        async with self.harness.runtime.store.transaction() as session:
            return (await session.scalars(select(RunRow).where(RunRow.workflow == workflow))).one()

    async def fast_forward_timers(self, timeout: float = 10) -> int:
        """Make the queued timers (reminders, SLA clocks) due now, as if hours went by.

        Waits for the step that queues them to have committed (its thread message can
        show up a moment before its transaction does)."""

        async def advanced() -> int:
            async with self.harness.runtime.store.transaction() as session:
                result = await session.execute(
                    update(JobRow)
                    .where(JobRow.kind == "timer", JobRow.status == "queued")
                    .values(due_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
                )
            return int(getattr(result, "rowcount", 0) or 0)

        count = await self.slack.wait_for(advanced, timeout=timeout, message="no timer queued")
        self.harness.runtime.engine.wakeup.set()
        return count


def buttons(message: JSON) -> list[str]:
    return [
        element["action_id"]
        for block in message.get("blocks", [])
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def blocks_text(message: JSON) -> str:
    return str(message.get("blocks", []))
