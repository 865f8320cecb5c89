"""Stand-ins for the business systems the bundled example workflows talk to.

``switchboard demo`` and the examples' end-to-end tests run them so every bundled
workflow works with no outside system: a Starlette app serving small ERP, CRM,
ads, IAM/HR directory, ticketing (Jira-shaped) and GRC APIs over one SQLite file
(created and seeded at every start, ``sandbox/standins/data.py``), plus an SMTP sink
that keeps what the systems and Switchboard's own ``email`` steps send.

::

    async with run_standins(tmp_path) as standins:      # own port, for tests and scripts
        standins.env        # {"ERP_URL": "http://127.0.0.1:…/erp", "ERP_TOKEN": …, …}
        standins.mail       # e-mails the SMTP sink received
        standins.calls      # requests the systems received
        standins.rows("select * from ledger")

    standins = Standins(path, base_url=f"{demo_url}/standins")   # mounted in another app
    routes.append(Mount("/standins", app=standins.app)); standins.start(); …; standins.stop()

``env`` is what ``workflows/examples/connections.yaml`` names: give it to the bot's
composition root (``build_runtime(settings, env=…)``) or put it in the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from sandbox.standins.api import Call, Mail, StandinApi
from sandbox.standins.data import create_database
from sandbox.standins.seed import USER_IDS, examples_seed, with_examples
from sandbox.standins.smtp import SmtpSink, free_port
from sandbox.standins.systems import SYSTEMS

__all__ = [
    "USER_IDS",
    "Call",
    "Mail",
    "Standins",
    "examples_seed",
    "run_standins",
    "with_examples",
]

DATABASE_NAME = "standins.db"


class Standins:
    """The stand-in systems and their SMTP sink; ``env`` tells the bot where they are."""

    def __init__(self, database: Path, base_url: str = "") -> None:
        self.database = database.resolve()
        create_database(self.database)
        self.api = StandinApi(self.database, tokens={s: secrets.token_urlsafe(18) for s in SYSTEMS})
        self.sink = SmtpSink(self.api.mailbox)
        self.base_url = base_url.rstrip("/")
        self.webhook_secret = secrets.token_urlsafe(24)
        self._app: Starlette | None = None

    @classmethod
    def beside(cls, database_url: str, base_url: str) -> Standins:
        """The demo's stand-ins: their file next to a SQLite store (else in the working folder)."""
        prefix = "sqlite+aiosqlite:///"
        store = Path(database_url.removeprefix(prefix) if database_url.startswith(prefix) else "")
        name = f"{store.stem}-standins.db" if store.name else "switchboard-demo-standins.db"
        return cls(store.with_name(name) if store.name else Path(name), base_url)

    @property
    def app(self) -> Starlette:
        if self._app is None:
            self._app = self.api.app
        return self._app

    def start(self) -> None:
        """Start the SMTP sink (the HTTP app needs no start)."""
        if self.sink.start():
            self.api.smtp = (self.sink.host, self.sink.port)

    def stop(self) -> None:
        self.sink.stop()
        self.api.smtp = None

    @property
    def env(self) -> dict[str, str]:
        """The environment variables ``workflows/examples/connections.yaml`` names."""
        if not self.base_url:
            raise RuntimeError("the stand-ins are not served yet: no base_url")
        env = {f"{system.upper()}_URL": f"{self.base_url}/{system}" for system in SYSTEMS} | {
            f"{system.upper()}_TOKEN": token for system, token in self.api.tokens.items()
        }
        env["WAREHOUSE_URL"] = f"sqlite+aiosqlite:///{self.database}"
        env["AP_WEBHOOK_SECRET"] = self.webhook_secret
        # Switchboard's own e-mail (the `mail` connection) goes to the sink; without aiosmtpd
        # nothing listens there and an e-mail step fails with "cannot connect".
        env["SMTP_HOST"] = f"{self.sink.host}:{self.sink.port}"
        return env

    @property
    def mail(self) -> list[Mail]:
        return self.api.mailbox

    @property
    def calls(self) -> list[Call]:
        return self.api.calls

    def rows(self, query: str, *params: Any) -> list[dict[str, Any]]:
        return self.api.rows(query, *params)


@contextlib.asynccontextmanager
async def run_standins(
    data_dir: Path, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[Standins]:
    """Create the stand-ins' data in ``data_dir`` and serve them on their own port."""
    standins = Standins(data_dir / DATABASE_NAME)
    port = port or free_port(host)
    server = uvicorn.Server(
        uvicorn.Config(
            standins.app,
            host=host,
            port=port,
            log_level="warning",
            log_config=None,  # keep the demo's scrubbed log chain for uvicorn's loggers
            access_log=False,
            lifespan="off",
        )
    )
    standins.start()
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the stand-ins' server stopped before it started")
            await asyncio.sleep(0.01)
        standins.base_url = f"http://{host}:{port}"
        yield standins
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        standins.stop()
