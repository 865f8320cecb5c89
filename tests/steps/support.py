"""What the connector-step tests share: the stand-ins (SMTP sink, Jira-shaped ticketing),
a workflows folder with their connections, and ways to wait for a run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import select

from sandbox.standins import Standins
from tests.support.harness import Harness
from workflows.tables import RunRow

FROM = "switchboard@example.com"


def connections_yaml(standins: Standins, extra: str = "") -> str:
    """An SMTP connection to the sink, a Jira connection to the ticketing stand-in, one http."""
    return (
        "connections:\n"
        "  mail:\n"
        "    type: email\n"
        f"    host: {standins.sink.host}\n"
        f"    port: {standins.sink.port}\n"
        "    security: none\n"
        f"    from_addr: {FROM}\n"
        "  jira:\n"
        "    type: jira\n"
        "    base_url_env: TICKETS_URL\n"
        "    token_env: TICKETS_TOKEN\n"
        "  crm:\n"
        "    type: http\n"
        "    base_url_env: CRM_URL\n"
        "    token_env: CRM_TOKEN\n"
    ) + extra


def write_folder(folder: Path, files: Mapping[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


async def finished_run(harness: Harness, workflow: str, timeout: float = 20) -> RunRow:
    async def done() -> RunRow | None:
        async with harness.runtime.store.transaction() as session:
            run = (await session.scalars(select(RunRow).where(RunRow.workflow == workflow))).first()
        return run if run is not None and run.status not in ("running", "waiting") else None

    return await harness.slack.wait_for(done, timeout=timeout, message=f"{workflow} not finished")
