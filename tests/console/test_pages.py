"""The console's other answers: live updates of a run, the workflows catalogue, health,
and how it says it is not enabled."""

from __future__ import annotations

import asyncio

from tests.support.stores import Database
from workflows.tables import RunRow

from .harness import Console, running_console
from .test_runs_api import started, waiting_card


async def test_a_watched_run_sends_change_when_it_moves(console: Console) -> None:
    run_id = await started(console, "alice", "desk chair 200 EUR")
    await waiting_card(console, "desk chair")
    async with (
        console.signed_in("alice") as http,
        http.stream("GET", f"/console/api/runs/{run_id}/events") as events,
    ):
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = events.aiter_lines()
        assert await anext(lines) == "retry: 1000"
        cancel = await http.post(f"/console/api/runs/{run_id}/cancel", json={})
        assert cancel.status_code == 200

        async def change() -> None:
            async for line in lines:
                if line == "event: change":
                    return

        await asyncio.wait_for(change(), timeout=5)


async def test_catalogue_and_health(console: Console) -> None:
    run_id = await started(console, "dave", "hi", command="ping")
    await console.slack.wait_for(
        lambda: _finished(console, run_id), message="the ping run did not finish"
    )
    async with console.signed_in("dave") as http:
        catalogue = (await http.get("/console/api/workflows")).json()
        names = [w["name"] for w in catalogue["workflows"]]
        assert names == ["expense", "ping"]
        ping = catalogue["workflows"][1]
        assert ping["triggers"] == [{"kind": "command"}] and len(ping["version"]) == 64
        assert ping["outcomes"] == {"succeeded": 1} and ping["cycle_s"]["runs"] == 1
        health = (await http.get("/console/api/health")).json()
        assert health["database_up"] is True
        assert {"jobs_due", "approvals_pending", "workers", "breakers"} <= set(health)


async def _finished(console: Console, run_id: str) -> bool:
    async with console.runtime.store.read() as session:
        run = await session.get(RunRow, run_id)
    return run is not None and run.status == "succeeded"


async def test_without_its_settings_the_console_says_how_to_enable_it(
    database: Database,
) -> None:
    async with running_console(database, SLACK_CLIENT_ID="") as console, console.client() as http:
        answer = await http.get("/console/")
        assert answer.status_code == 404 and "SLACK_CLIENT_ID" in answer.text
        assert (await http.get("/console/api/runs")).status_code == 404
