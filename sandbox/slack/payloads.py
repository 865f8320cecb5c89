"""The bodies Slack sends an app: Events API envelopes and events, slash-command
forms and interaction payloads (block_actions, view_submission, view_closed,
message_action), shaped as Slack shapes them.
"""

from __future__ import annotations

import copy
import secrets
import time

from .records import JSON, Channel, Message, User, View
from .state import Workspace

VERIFICATION_TOKEN = "sandboxVerificationToken"


def _team(ws: Workspace) -> JSON:
    return {"id": ws.team_id, "domain": ws.team_domain}


def _user(ws: Workspace, user: User) -> JSON:
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": ws.team_id}


def channel_name(ch: Channel, for_command: bool = False) -> str:
    """What Slack reports as a conversation's name in payloads.

    Slash commands still use the legacy names for DMs and private channels.
    """
    if ch.is_im:
        return "directmessage"
    if for_command and ch.is_private:
        return "privategroup"
    return ch.name


def rich_text_blocks(text: str) -> list[JSON]:
    """The rich_text block Slack's clients attach to a message a person types."""
    return [
        {
            "type": "rich_text",
            "block_id": secrets.token_hex(3),
            "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
            ],
        }
    ]


# --------------------------------------------------------------------------- events


def envelope(ws: Workspace, event: JSON) -> JSON:
    """Wrap an event the way the Events API delivers it over HTTP."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.team_id,
        "context_team_id": ws.team_id,
        "context_enterprise_id": None,
        "api_app_id": ws.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{secrets.token_hex(5).upper()}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.team_id,
                "user_id": ws.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{secrets.token_urlsafe(24)}",
    }


def url_verification(challenge: str) -> JSON:
    return {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}


def message_event(ws: Workspace, msg: Message) -> JSON:
    ch = ws.require_channel(msg.channel)
    event = ws.message_dict(msg, include_metadata=True)
    event["channel"] = ch.id
    event["event_ts"] = msg.ts
    event["channel_type"] = ch.channel_type
    # Slack does not put thread summary fields on the live event.
    for key in (
        "reply_count",
        "reply_users_count",
        "reply_users",
        "latest_reply",
        "is_locked",
        "subscribed",
    ):
        event.pop(key, None)
    return event


def app_mention_event(ws: Workspace, msg: Message) -> JSON:
    event: JSON = {
        "type": "app_mention",
        "user": msg.user,
        "text": msg.text,
        "ts": msg.ts,
        "team": ws.team_id,
        "channel": msg.channel,
        "event_ts": msg.ts,
    }
    if msg.blocks is not None:
        event["blocks"] = copy.deepcopy(msg.blocks)
    if msg.is_reply:
        event["thread_ts"] = msg.thread_ts
    return event


def message_changed_event(ws: Workspace, before: JSON, after: Message, event_ts: str) -> JSON:
    ch = ws.require_channel(after.channel)
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": ws.message_dict(after),
        "previous_message": before,
        "channel": ch.id,
        "hidden": True,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": ch.channel_type,
    }


def message_deleted_event(ws: Workspace, before: JSON, channel: str, event_ts: str) -> JSON:
    ch = ws.require_channel(channel)
    return {
        "type": "message",
        "subtype": "message_deleted",
        "previous_message": before,
        "channel": ch.id,
        "hidden": True,
        "deleted_ts": before.get("ts"),
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": ch.channel_type,
    }


def reaction_added_event(
    ws: Workspace, user: str, reaction: str, msg: Message, event_ts: str
) -> JSON:
    return {
        "type": "reaction_added",
        "user": user,
        "reaction": reaction,
        "item_user": msg.user,
        "item": {"type": "message", "channel": msg.channel, "ts": msg.ts},
        "event_ts": event_ts,
    }


def app_home_opened_event(
    ws: Workspace, user: str, channel: str, view: View | None, event_ts: str
) -> JSON:
    event: JSON = {
        "type": "app_home_opened",
        "user": user,
        "channel": channel,
        "tab": "home",
        "event_ts": event_ts,
    }
    if view is not None:
        event["view"] = ws.view_dict(view)
    return event


# --------------------------------------------------------------------------- interactivity


def slash_command_form(
    ws: Workspace,
    user: User,
    ch: Channel,
    command: str,
    text: str,
    response_url: str,
    trigger_id: str,
) -> dict[str, str]:
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.team_id,
        "team_domain": ws.team_domain,
        "channel_id": ch.id,
        "channel_name": channel_name(ch, for_command=True),
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def block_actions(
    ws: Workspace,
    user: User,
    actions: list[JSON],
    trigger_id: str,
    *,
    channel: Channel | None = None,
    message: JSON | None = None,
    message_ts: str | None = None,
    is_ephemeral: bool = False,
    view: View | None = None,
    response_url: str | None = None,
) -> JSON:
    payload: JSON = {
        "type": "block_actions",
        "user": _user(ws, user),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "team": _team(ws),
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if view is not None:
        payload["container"] = {"type": "view", "view_id": view.id}
        payload["view"] = ws.view_dict(view)
    else:
        assert channel is not None
        payload["container"] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel.id,
            "is_ephemeral": is_ephemeral,
        }
        payload["channel"] = {"id": channel.id, "name": channel_name(channel)}
        if message is not None:
            payload["message"] = message
            if message.get("thread_ts"):
                payload["container"]["thread_ts"] = message["thread_ts"]
        payload["state"] = {"values": {}}
        payload["response_url"] = response_url
    payload["actions"] = actions
    return payload


def view_submission(ws: Workspace, user: User, view: View, trigger_id: str) -> JSON:
    return {
        "type": "view_submission",
        "team": _team(ws),
        "user": _user(ws, user),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": ws.view_dict(view),
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def view_closed(ws: Workspace, user: User, view: View, is_cleared: bool) -> JSON:
    return {
        "type": "view_closed",
        "team": _team(ws),
        "user": _user(ws, user),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "view": ws.view_dict(view),
        "is_cleared": is_cleared,
        "is_enterprise_install": False,
        "enterprise": None,
    }


def message_action(
    ws: Workspace,
    user: User,
    ch: Channel,
    msg: Message,
    callback_id: str,
    trigger_id: str,
    response_url: str,
) -> JSON:
    return {
        "type": "message_action",
        "token": VERIFICATION_TOKEN,
        "action_ts": f"{time.time():.6f}",
        "team": _team(ws),
        "user": {"id": user.id, "name": user.name, "username": user.name, "team_id": ws.team_id},
        "channel": {"id": ch.id, "name": channel_name(ch)},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
        "response_url": response_url,
        "message_ts": msg.ts,
        "message": ws.message_dict(msg, include_metadata=False),
    }
