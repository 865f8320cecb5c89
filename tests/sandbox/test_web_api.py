"""The Web API through real HTTP with slack_sdk's AsyncWebClient."""

from __future__ import annotations

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackEmulator

from .conftest import TOKEN


async def test_auth(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    resp = await client.auth_test()
    assert resp["user_id"] == emulator.workspace.bot_user_id
    assert resp["team_id"] == emulator.workspace.team_id
    assert resp["bot_id"] == emulator.workspace.bot_id

    with pytest.raises(SlackApiError) as bad:
        await AsyncWebClient(token="xoxb-wrong", base_url=emulator.api_url).auth_test()
    assert bad.value.response["error"] == "invalid_auth"
    async with httpx.AsyncClient() as http:
        raw = await http.post(emulator.api_url + "auth.test")
        assert raw.json() == {"ok": False, "error": "not_authed"}
        # The token may also come as a form argument, as Slack allows.
        form = await http.post(emulator.api_url + "auth.test", data={"token": TOKEN})
        assert form.json()["ok"] is True
    assert [c.error for c in emulator.api_calls("auth.test")][1:3] == ["invalid_auth", "not_authed"]


async def test_post_thread_update_delete_history(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    general = emulator.channel_id("general")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Invoice* 42"}}]
    root = await client.chat_postMessage(
        channel="#general",
        text="Invoice 42",
        blocks=blocks,
        metadata={"event_type": "run_started", "event_payload": {"run": "r1"}},
        unfurl_links=False,
    )
    assert root["channel"] == general
    assert root["message"]["bot_id"] == emulator.workspace.bot_id
    assert root["message"]["blocks"][0]["block_id"]  # Slack fills in block ids
    reply = await client.chat_postMessage(channel=general, thread_ts=root["ts"], text="step 1 done")
    await client.chat_postMessage(channel=general, thread_ts=reply["ts"], text="step 2 done")
    upd = await client.chat_update(channel=general, ts=root["ts"], text="Invoice 42 (approved)")
    assert upd["message"]["edited"]["user"] == emulator.workspace.bot_user_id

    history = await client.conversations_history(channel=general)
    assert [m["text"] for m in history["messages"]] == ["Invoice 42 (approved)"]
    assert history["messages"][0]["reply_count"] == 2
    assert "metadata" not in history["messages"][0]
    with_meta = await client.conversations_history(channel=general, include_all_metadata=True)
    assert with_meta["messages"][0]["metadata"] == {
        "event_type": "run_started",
        "event_payload": {"run": "r1"},
    }
    replies = await client.conversations_replies(channel=general, ts=root["ts"])
    assert [m["text"] for m in replies["messages"]] == [
        "Invoice 42 (approved)",
        "step 1 done",
        "step 2 done",
    ]
    assert all(m["thread_ts"] == root["ts"] for m in replies["messages"])
    assert [m["text"] for m in emulator.thread("#general", root["ts"])][1:] == [
        "step 1 done",
        "step 2 done",
    ]

    link = await client.chat_getPermalink(channel=general, message_ts=reply["ts"])
    assert link["permalink"].endswith(f"?thread_ts={root['ts']}&cid={general}")

    await client.chat_delete(channel=general, ts=reply["ts"])
    assert len(emulator.thread("#general", root["ts"])) == 2

    page1 = await client.conversations_history(channel=general, limit=1)
    assert page1["has_more"] is False


async def test_ephemeral_and_dm(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    alice = emulator.user_id("alice")
    eph = await client.chat_postEphemeral(channel="#general", user=alice, text="only you")
    assert eph["message_ts"]
    assert [e["text"] for e in emulator.ephemerals("alice")] == ["only you"]
    assert emulator.messages("#general") == []

    opened = await client.conversations_open(users=alice)
    dm = opened["channel"]["id"]
    assert dm.startswith("D")
    again = await client.conversations_open(users=alice)
    assert again["channel"]["id"] == dm and again["already_open"] is True
    await client.chat_postMessage(channel=dm, text="approve?")
    # Posting to a user id lands in the same DM.
    await client.chat_postMessage(channel=alice, text="reminder")
    assert [m["text"] for m in emulator.messages(dm)] == ["approve?", "reminder"]


async def test_errors(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    async def error_of(coro: object) -> str:
        with pytest.raises(SlackApiError) as info:
            await coro  # type: ignore[misc]
        return str(info.value.response["error"])

    general = emulator.channel_id("general")
    assert await error_of(client.chat_postMessage(channel="#nope", text="x")) == "channel_not_found"
    with pytest.warns(UserWarning, match="text"):
        assert await error_of(client.chat_postMessage(channel=general)) == "no_text"
    assert await error_of(client.chat_postMessage(channel=general, text="x" * 40_001)) == (
        "msg_too_long"
    )
    assert await error_of(client.chat_update(channel=general, ts="1.000001", text="x")) == (
        "message_not_found"
    )
    # The bot cannot edit what people wrote.
    posted = await emulator.user_posts("alice", "#general", "hello")
    assert await error_of(client.chat_update(channel=general, ts=posted["ts"], text="x")) == (
        "cant_update_message"
    )
    # A private channel the bot is not in is invisible to it.
    emulator.channel("leadership").members.remove(emulator.workspace.bot_user_id)
    assert await error_of(
        client.conversations_history(channel=emulator.channel_id("leadership"))
    ) == ("channel_not_found")
    assert await error_of(client.conversations_history(channel=emulator.channel_id("random"))) == (
        "not_in_channel"
    )
    assert await error_of(client.users_info(user="U404")) == "user_not_found"
    assert await error_of(client.api_call("chat.unknownThing")) == "unknown_method"
    assert (
        await error_of(
            client.chat_postEphemeral(
                channel="#finance-approvals", user=emulator.user_id("bob"), text="x"
            )
        )
        == "user_not_in_channel"
    )


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([{"type": "divider"}] * 51, "/blocks]"),
        (
            [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
            "/blocks/0/text/text",
        ),
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
            "/blocks/0/text/text",
        ),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "a",
                            "text": {"type": "plain_text", "text": "x" * 76},
                        }
                    ],
                }
            ],
            "/blocks/0/elements/0/text/text",
        ),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "a" * 256,
                            "text": {"type": "plain_text", "text": "ok"},
                            "value": "v" * 2001,
                        }
                    ],
                }
            ],
            "/blocks/0/elements/0/action_id",
        ),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": f"b{i}",
                            "text": {"type": "plain_text", "text": "ok"},
                        }
                        for i in range(26)
                    ],
                }
            ],
            "/blocks/0/elements",
        ),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
            "/blocks/0/fields",
        ),
        ([{"type": "no_such_block"}], "/blocks/0"),
    ],
)
async def test_block_limits(
    emulator: SlackEmulator, client: AsyncWebClient, blocks: list[dict[str, object]], pointer: str
) -> None:
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="#general", text="t", blocks=blocks)
    resp = info.value.response
    assert resp["error"] == "invalid_blocks"
    messages = resp["response_metadata"]["messages"]
    assert messages and all(m.startswith("[ERROR] ") for m in messages)
    assert any(f"[json-pointer:{pointer}" in m for m in messages), messages


async def test_directory_methods(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    users = await client.users_list()
    names = {u["name"] for u in users["members"]}
    assert {"alice", "bob", "carol", "dave", "switchboard"} <= names
    info = await client.users_info(user=emulator.user_id("alice"))
    assert info["user"]["real_name"] == "Alice Archer"

    groups = await client.usergroups_list(include_users=True)
    finance = next(g for g in groups["usergroups"] if g["handle"] == "finance")
    members = await client.usergroups_users_list(usergroup=finance["id"])
    assert set(members["users"]) == {emulator.user_id(n) for n in ("alice", "bob", "carol")}

    chans = await client.conversations_list(types="public_channel,private_channel", limit=2)
    seen = [c["name"] for c in chans["channels"]]
    cursor = chans["response_metadata"]["next_cursor"]
    while cursor:
        page = await client.conversations_list(
            types="public_channel,private_channel", limit=2, cursor=cursor
        )
        seen += [c["name"] for c in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
    assert seen == ["general", "random", "ap-inbox", "finance-approvals", "leadership"]

    random_id = emulator.channel_id("random")
    assert (await client.conversations_info(channel=random_id))["channel"]["is_member"] is False
    joined = await client.conversations_join(channel=random_id)
    assert joined["channel"]["is_member"] is True
    members_resp = await client.conversations_members(channel=random_id)
    assert emulator.workspace.bot_user_id in members_resp["members"]


async def test_reactions(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    msg = await emulator.user_posts("bob", "#general", "please book this")
    await client.reactions_add(channel=msg["channel"], timestamp=msg["ts"], name="eyes")
    with pytest.raises(SlackApiError) as info:
        await client.reactions_add(channel=msg["channel"], timestamp=msg["ts"], name="eyes")
    assert info.value.response["error"] == "already_reacted"
    assert emulator.messages("#general")[0]["reactions"] == [
        {"name": "eyes", "users": [emulator.workspace.bot_user_id], "count": 1}
    ]


async def test_seed_from_dict() -> None:
    from sandbox.slack import SlackEmulator

    emu = SlackEmulator(
        "s",
        "xoxb-t",
        {
            "users": [{"name": "erin", "real_name": "Erin Ek"}],
            "channels": [{"name": "ops", "is_private": True, "members": ["erin"]}],
            "usergroups": [{"handle": "oncall", "users": ["erin"]}],
        },
    )
    ops = emu.channel("#ops")
    assert ops.id.startswith("G") and ops.is_private
    assert ops.members == [emu.user_id("erin"), emu.workspace.bot_user_id]
    assert emu.workspace.find_usergroup("@oncall") is not None
    await emu.aclose()
