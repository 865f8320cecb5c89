"""A run a webhook started has no requester: admins cancel and retry it from Slack, others
are told there is no such run (issue 16: "nobody can cancel or retry runs started by a
schedule or webhook"). The schedule case is ``tests/operator/test_admin_actions.py``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from connectors.webhook_out import sign
from tests.operator.test_admin_actions import ADMIN, SEED, records, until_status
from tests.support.harness import running_bot
from tests.support.stores import Database

HOOK_SECRET = "whsec-lifecycle-51ab"
HOOKED = """
name: deploys
triggers: [{webhook: {secret_env: TEST_LIFECYCLE_HOOK_SECRET}}]
steps:
  - id: gather
    set: {service: "{{ input.service }}"}
  - id: hold
    wait: {duration: 1h}
  - id: report
    set: {said: "{{ steps.gather.service }} deployed"}
"""


async def deliver(bot_url: str, key: str) -> str:
    body = json.dumps({"service": "billing"}).encode()
    sent_at = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Switchboard-Timestamp": str(sent_at),
        "X-Switchboard-Signature": sign(HOOK_SECRET, sent_at, body),
        "Idempotency-Key": key,
    }
    async with httpx.AsyncClient(base_url=bot_url) as http:
        response = await http.post("/hooks/deploys", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["run_id"])


async def test_an_admin_cancels_and_retries_a_webhook_run_others_are_refused(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LIFECYCLE_HOOK_SECRET", HOOK_SECRET)
    (tmp_path / "deploys.yaml").write_text(HOOKED)
    async with running_bot(
        database, workflows_dir=tmp_path, seed=SEED, SWITCHBOARD_ADMINS=f"{ADMIN},@ops"
    ) as harness:
        slack = harness.slack
        run_id = await deliver(harness.bot_url, "deploy-4411")
        waiting = await until_status(harness, run_id, "waiting")
        assert waiting.requester is None

        for action in ("status", "cancel", "retry"):
            refused = await slack.slash_command("dave", "general", f"{action} {run_id}")
            assert f"There is no run `{run_id}`" in refused.body, refused.body

        cancelled = await slack.slash_command("root", "general", f"cancel {run_id} -- bad deploy")
        assert f"Cancelled run `{run_id}`" in cancelled.body, cancelled.body
        await until_status(harness, run_id, "cancelled")

        retried = await slack.slash_command("carol", "general", f"retry {run_id} report")
        assert "from step *report*" in retried.body, retried.body
        done = await until_status(harness, run_id, "succeeded")
        assert done.context["steps"]["report"] == {"said": "billing deployed"}

        rows = {r.action: r for r in await records(harness, run_id)}
        assert rows["run.started"].detail["trigger"] == "webhook"
        assert rows["run.cancelled"].actor == ADMIN and rows["run.cancelled"].detail["admin"]
        assert rows["run.retried"].actor == slack.user_id("carol")
        assert rows["run.retried"].detail["admin"] is True
