"""Modals, App Home and file uploads: trigger_id rules, response_action, files_upload_v2."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackEmulator

from .conftest import Receiver


def modal(title: str = "Reject", callback_id: str = "reject") -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": "run-1",
        "notify_on_close": True,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {"type": "plain_text_input", "action_id": "text"},
            },
            {
                "type": "input",
                "block_id": "who",
                "optional": True,
                "label": {"type": "plain_text", "text": "Notify"},
                "element": {"type": "users_select", "action_id": "user"},
            },
        ],
    }


async def trigger_for(emulator: SlackEmulator, receiver: Receiver, user: str = "carol") -> str:
    await emulator.slash_command(user, "#general", "approvals")
    return receiver.requests[-1].form["trigger_id"]


async def api_error(coro: Any) -> str:
    with pytest.raises(SlackApiError) as info:
        await coro
    return str(info.value.response["error"])


async def test_trigger_id_rules(
    emulator: SlackEmulator, client: AsyncWebClient, receiver: Receiver
) -> None:
    assert await api_error(client.views_open(trigger_id="123.456.abc", view=modal())) == (
        "invalid_trigger_id"
    )
    trigger = await trigger_for(emulator, receiver)
    opened = await client.views_open(trigger_id=trigger, view=modal())
    assert opened["view"]["callback_id"] == "reject"
    assert opened["view"]["private_metadata"] == "run-1"
    assert await api_error(client.views_open(trigger_id=trigger, view=modal())) == (
        "exchanged_trigger_id"
    )
    assert [v["id"] for v in emulator.open_views("carol")] == [opened["view"]["id"]]

    emulator.trigger_ttl = 0.1
    late = await trigger_for(emulator, receiver)
    await asyncio.sleep(0.2)
    assert await api_error(client.views_open(trigger_id=late, view=modal())) == (
        "expired_trigger_id"
    )


async def test_view_validation(
    emulator: SlackEmulator, client: AsyncWebClient, receiver: Receiver
) -> None:
    trigger = await trigger_for(emulator, receiver)
    bad = modal(title="x" * 25)
    with pytest.raises(SlackApiError) as info:
        await client.views_open(trigger_id=trigger, view=bad)
    assert info.value.response["error"] == "invalid_arguments"
    assert "/view/title/text" in info.value.response["response_metadata"]["messages"][0]


async def test_submission_errors_update_push_close(
    emulator: SlackEmulator, client: AsyncWebClient, receiver: Receiver
) -> None:
    trigger = await trigger_for(emulator, receiver)
    view_id = (await client.views_open(trigger_id=trigger, view=modal()))["view"]["id"]

    with pytest.raises(ValueError, match="required"):
        await emulator.submit_view("carol", view_id, {})

    receiver.answer(body={"response_action": "errors", "errors": {"reason": "Too short"}})
    result = await emulator.submit_view("carol", view_id, {"text": "no"})
    assert result.outcome == "errors"
    assert emulator.view_errors(view_id) == {"reason": "Too short"}
    payload = receiver.requests[-1].payload
    assert payload["type"] == "view_submission"
    assert payload["view"]["state"]["values"] == {
        "reason": {"text": {"type": "plain_text_input", "value": "no"}},
        "who": {"user": {"type": "users_select", "selected_user": None}},
    }
    assert payload["view"]["private_metadata"] == "run-1"

    receiver.answer(body={"response_action": "update", "view": modal(title="Again")})
    result = await emulator.submit_view("carol", view_id, {"reason.text": "better reason"})
    assert result.outcome == "updated"
    assert emulator.open_views("carol")[0]["title"]["text"] == "Again"

    receiver.answer(body={"response_action": "push", "view": modal(title="Confirm")})
    result = await emulator.submit_view("carol", None, {"text": "better reason"})
    assert result.outcome == "pushed" and len(emulator.open_views("carol")) == 2

    closed = await emulator.close_view("carol")  # notify_on_close → view_closed
    assert closed is not None and receiver.requests[-1].payload["type"] == "view_closed"
    assert len(emulator.open_views("carol")) == 1

    result = await emulator.submit_view(
        "carol", view_id, {"text": "fine", "who": {"user": emulator.user_id("bob")}}
    )
    assert result.outcome == "closed" and emulator.open_views("carol") == []
    state = receiver.requests[-1].payload["view"]["state"]["values"]
    assert state["who"]["user"]["selected_user"] == emulator.user_id("bob")


async def test_views_update_hash_and_push(
    emulator: SlackEmulator, client: AsyncWebClient, receiver: Receiver
) -> None:
    trigger = await trigger_for(emulator, receiver)
    view = (await client.views_open(trigger_id=trigger, view=modal()))["view"]
    assert await api_error(
        client.views_update(view_id=view["id"], hash="stale", view=modal(title="New"))
    ) == ("hash_conflict")
    updated = await client.views_update(view_id=view["id"], hash=view["hash"], view=modal("New"))
    assert updated["view"]["title"]["text"] == "New" and updated["view"]["hash"] != view["hash"]
    trigger2 = await trigger_for(emulator, receiver)
    pushed = await client.views_push(trigger_id=trigger2, view=modal("Second"))
    assert pushed["view"]["previous_view_id"] == view["id"]


async def test_app_home(
    emulator: SlackEmulator, client: AsyncWebClient, receiver: Receiver
) -> None:
    alice = emulator.user_id("alice")
    home = {
        "type": "home",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Your approvals"}},
            {
                "type": "actions",
                "block_id": "queue",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "open_run",
                        "text": {"type": "plain_text", "text": "Open"},
                        "value": "run-7",
                    }
                ],
            },
        ],
    }
    published = await client.views_publish(user_id=alice, view=home)
    assert emulator.home_view("alice") == published["view"]
    too_many = {"type": "home", "blocks": [{"type": "divider"}] * 101}
    assert await api_error(client.views_publish(user_id=alice, view=too_many)) == (
        "invalid_arguments"
    )
    await emulator.click("alice", published["view"]["id"], "open_run")
    payload = receiver.requests[-1].payload
    assert payload["container"] == {"type": "view", "view_id": published["view"]["id"]}
    assert payload["view"]["type"] == "home" and payload["actions"][0]["value"] == "run-7"
    assert "response_url" not in payload


async def test_files_upload_v2(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    root = await client.chat_postMessage(channel="#general", text="digest")
    resp = await client.files_upload_v2(
        channel=emulator.channel_id("general"),
        thread_ts=root["ts"],
        content=b"\x89PNG fake chart",
        filename="chart.png",
        title="Weekly chart",
        initial_comment="This week",
    )
    file_id = resp["file"]["id"]
    assert resp["file"]["title"] == "Weekly chart"
    assert emulator.file_content(file_id) == b"\x89PNG fake chart"
    thread = emulator.thread("#general", root["ts"])
    assert thread[1]["text"] == "This week" and thread[1]["files"][0]["id"] == file_id
    assert [c.method for c in emulator.api_calls()][-3:] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
