"""A ``call`` step whose function lives in ``steps/`` beside the workflows and uses a named
connection through its typed context; its own failures map to retryable or not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.standins import USER_IDS, Standins, examples_seed, run_standins
from tests.steps.support import connections_yaml, finished_run, write_folder
from tests.support.harness import running_bot
from tests.support.stores import Database

LOOKUP = """\
name: lookup
title: Lookup
channel: "#general"
triggers: [{command: lookup}]
steps:
  - id: customer
    call:
      function: steps.crm_tools:find_customer
      args: {user: "{{ input.text }}"}
    retry: {attempts: 3, initial: 0.1, jitter: false}
  - id: legacy
    call: {function: steps.crm_tools:shout, args: {text: "{{ steps.customer.name }}"}}
"""

CRM_TOOLS = '''\
"""Custom steps of this workflows folder (loaded by file path by Switchboard)."""

from workflows.steps.calls import CallContext, CallFailed

tries = 0


async def find_customer(ctx: CallContext) -> dict[str, object]:
    global tries
    tries += 1
    if tries == 1:
        raise CallFailed("CRM warming up", retryable=True)
    assert ctx.run["input"]["text"] == ctx.inputs["user"]
    result = await ctx.connections.http("crm").request(
        "GET", "/customers", query={"slack_user": ctx.inputs["user"]},
        idempotency_key=ctx.idempotency_key,
    )
    customers = result.data["results"]
    if not customers:
        raise CallFailed(f"no customer for {ctx.inputs['user']}")
    return {"name": customers[0]["name"], "tries": tries, "key": ctx.idempotency_key}


def shout(text: str) -> dict[str, object]:
    return {"text": text.upper()}
'''


@pytest.fixture
async def standins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Standins]:
    async with run_standins(tmp_path / "standins") as running:
        for name, value in running.env.items():
            monkeypatch.setenv(name, value)
        yield running


async def test_a_python_step_from_the_folder_uses_a_connection(
    database: Database, tmp_path: Path, standins: Standins
) -> None:
    folder = write_folder(
        tmp_path / "wf",
        {
            "lookup.yaml": LOOKUP,
            "connections.yaml": connections_yaml(standins),
            "steps/crm_tools.py": CRM_TOOLS,
        },
    )
    customer_user = _a_customer(standins)
    async with running_bot(database, workflows_dir=folder, seed=examples_seed()) as harness:
        assert not harness.runtime.definition_errors, harness.runtime.definition_errors
        await harness.slack.slash_command("alice", "general", f"lookup {customer_user}")
        run = await finished_run(harness, "lookup", timeout=30)

    assert run.status == "succeeded", run.error
    found = run.context["steps"]["customer"]
    assert found["tries"] == 2 and found["key"] == f"{run.id}:customer"
    assert run.context["steps"]["legacy"]["text"] == found["name"].upper()
    assert [c.path for c in standins.calls] == ["/crm/customers"]


async def test_a_non_retryable_failure_fails_the_step_once_with_its_message(
    database: Database, tmp_path: Path, standins: Standins
) -> None:
    folder = write_folder(
        tmp_path / "wf",
        {
            "lookup.yaml": LOOKUP,
            "connections.yaml": connections_yaml(standins),
            "steps/crm_tools.py": CRM_TOOLS,
        },
    )
    async with running_bot(database, workflows_dir=folder) as harness:
        await harness.slack.slash_command("alice", "general", "lookup U0NOBODY")
        run = await finished_run(harness, "lookup", timeout=30)

    assert run.status == "failed"
    assert run.error is not None and "no customer for U0NOBODY" in run.error
    assert "Traceback" not in run.error
    assert len(standins.calls) == 1  # not retried: the CRM was asked once


def _a_customer(standins: Standins) -> str:
    rows = standins.rows("select slack_user from customers order by id limit 1")
    assert rows and rows[0]["slack_user"] in USER_IDS.values()
    return str(rows[0]["slack_user"])
