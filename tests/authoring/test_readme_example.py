"""The README's "Writing a workflow" example, exactly as printed, end to end.

Through the Slack emulator (a real /flow command, a real approver clicking on the card)
and a local HTTP server standing in for the ERP the example books into.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.authoring.docs_yaml import ROOT, yaml_blocks
from tests.support.harness import running_bot
from tests.support.servers import serve_asgi
from tests.support.stores import Database


def readme_example() -> str:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    section = text[text.index("## Writing a workflow") :]
    return yaml_blocks(readme, section)[0].text


class Erp:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    async def expenses(self, request: Request) -> JSONResponse:
        self.received.append(await request.json())
        return JSONResponse({"id": f"EXP-{len(self.received)}"}, status_code=201)


@contextlib.asynccontextmanager
async def erp_server(erp: Erp) -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/api/expenses", erp.expenses, methods=["POST"])])
    async with serve_asgi(app) as url:
        yield url


def folder_with_example(tmp_path: Path, erp_url: str) -> Path:
    (tmp_path / "expense.yaml").write_text(readme_example(), encoding="utf-8")
    (tmp_path / "connections.yaml").write_text(
        f"connections:\n  erp: {{type: http, base_url: '{erp_url}/api'}}\n", encoding="utf-8"
    )
    return tmp_path


async def test_the_readme_example_runs_as_printed(database: Database, tmp_path: Path) -> None:
    erp = Erp()
    async with erp_server(erp) as erp_url:
        folder = folder_with_example(tmp_path, erp_url)
        async with running_bot(database, workflows_dir=folder) as harness:
            slack = harness.slack
            await slack.slash_command("alice", "general", "expense 640 EUR team dinner")
            card = await slack.wait_for(
                lambda: next(iter(slack.messages("finance-approvals")), None),
                message="no approval card",
            )
            assert "Expense: 640 EUR team dinner" in card["text"]
            assert "640.00 EUR" in str(card["blocks"])
            click = await slack.click(
                "carol", card["ts"], "approval:approve", channel="finance-approvals"
            )
            assert click.ok
            root = await harness.root_message("general", "started expense")

            def booked() -> dict[str, Any] | None:
                thread = slack.thread("general", root["ts"])
                wanted = "Booked 640.00 EUR for team dinner."
                return next((m for m in thread if wanted in m.get("text", "")), None)

            await slack.wait_for(booked, timeout=15, message="the expense was not booked")
    assert erp.received == [{"amount": {"amount": 640.0, "currency": "EUR"}}]


async def test_a_small_expense_is_booked_without_approval(
    database: Database, tmp_path: Path
) -> None:
    erp = Erp()
    async with erp_server(erp) as erp_url:
        folder = folder_with_example(tmp_path, erp_url)
        async with running_bot(database, workflows_dir=folder) as harness:
            slack = harness.slack
            await slack.slash_command("alice", "general", "expense 40 EUR coffee")
            root = await harness.root_message("general", "started expense")
            await slack.wait_for(
                lambda: any(
                    "Booked 40.00 EUR for coffee." in m.get("text", "")
                    for m in slack.thread("general", root["ts"])
                ),
                message="the expense was not booked",
            )
            assert slack.messages("finance-approvals") == []
    assert erp.received == [{"amount": {"amount": 40.0, "currency": "EUR"}}]
