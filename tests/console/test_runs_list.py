"""The runs list: newest first, keyset pages that neither skip nor repeat, every filter,
search by text and run id, and one-line 400s for bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text

from bot.console.runs_list import RunQuery, list_statement
from tests.support.stores import Database
from workflows.runs import StartRequest, start_run

from .harness import Console

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def seed(console: Console) -> list[str]:
    """Seven runs of alice's, a minute apart (the oldest first), two of them webhooks."""
    alice = console.slack.user_id("alice")
    ids = []
    for n in range(7):
        name = "ping" if n % 3 == 0 else "expense"
        source = "webhook" if n in (2, 5) else "command"
        request = StartRequest(
            console.runtime.workflows[name], source, text=f"lunch order {n}", user_id=alice
        )
        started = await start_run(console.runtime.store, request, T0 + timedelta(minutes=n))
        ids.append(started.run_id)
    return ids


async def ids_of(http: httpx.AsyncClient, **params: str) -> list[str]:
    answer = await http.get("/console/api/runs", params=params)
    assert answer.status_code == 200, answer.text
    return [run["id"] for run in answer.json()["runs"]]


async def test_pages_filters_and_search(console: Console) -> None:
    await console.runtime.stop()  # no workers: the seeded runs keep their state
    ids = await seed(console)
    newest_first = ids[::-1]
    async with console.signed_in("alice") as http:
        seen: list[str] = []
        cursor = ""
        while True:
            page = (
                await http.get("/console/api/runs", params={"limit": 3, "cursor": cursor})
            ).json()
            seen += [run["id"] for run in page["runs"]]
            if not page["next"]:
                break
            cursor = page["next"]
        assert seen == newest_first
        assert await ids_of(http, workflow="ping") == [ids[6], ids[3], ids[0]]
        assert await ids_of(http, trigger="webhook") == [ids[5], ids[2]]
        assert await ids_of(http, status="running", workflow="expense", limit="2") == [
            ids[5],
            ids[4],
        ]
        assert await ids_of(http, q="order 4") == [ids[4]]
        assert await ids_of(http, q=ids[1]) == [ids[1]]
        assert await ids_of(http, q="100%_") == []
        since, until = (
            (T0 + timedelta(minutes=2)).isoformat(),
            (T0 + timedelta(minutes=4)).isoformat(),
        )
        assert await ids_of(http, since=since, until=until) == [ids[3], ids[2]]
        assert await ids_of(http, requester=console.slack.user_id("bob")) == []
        for params in (
            {"cursor": "bogus!"},
            {"since": "yesterday"},
            {"workflow": "a b"},
            {"limit": "ten"},
        ):
            refused = await http.get("/console/api/runs", params=params)
            assert refused.status_code == 400, params
            assert ":" in refused.json()["error"]


async def test_a_non_admins_gate_path_uses_the_approvers_index_on_postgresql(
    pg_database: Database,
) -> None:
    """The runs whose gates name the viewer: JSONB containment over the GIN index of
    migration 0012 (a LIKE over the approvers as text scanned every gate). With sequential
    scans priced out, the plan must reach the gates through that index."""
    store = pg_database.store()  # the GIN index is PostgreSQL's; SQLite matches text
    statement = list_statement(RunQuery.parse({}), "U0SB000002", False, "postgresql")
    sql = str(statement.compile(store.engine, compile_kwargs={"literal_binds": True}))
    try:
        async with store.transaction() as session:
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(row[0] for row in await session.execute(text(f"EXPLAIN {sql}")))
    finally:
        await store.dispose()
    assert "ix_approval_gates_approvers" in plan, plan
