"""The sandbox page's view of the workspace, as one user sees it, in JSON.

Messages are in the Web API's shape (``conversations.history``), so the page
renders exactly what the app posted. A user sees the channels they are in
(and the public ones they are not, to browse), their DM with the app, their
own ephemeral messages, their App Home and their open modal.
"""

from __future__ import annotations

from collections.abc import Mapping

from .emulator import SlackEmulator
from .records import JSON, Channel, User


def _user(user: User, personas: Mapping[str, str]) -> JSON:
    return {
        "id": user.id,
        "name": user.name,
        "real_name": user.real_name,
        "is_bot": user.is_bot,
        "role": personas.get(user.name, ""),
    }


def _channel(ch: Channel, me: User, emu: SlackEmulator) -> JSON:
    ws = emu.workspace
    return {
        "id": ch.id,
        "name": ch.name,
        "kind": "im" if ch.is_im else "mpim" if ch.is_mpim else "channel",
        "is_private": ch.is_private,
        "is_member": me.id in ch.members,
        "bot_member": ws.bot_user_id in ch.members,
        "topic": ch.topic,
        "purpose": ch.purpose,
        "members": len(ch.members),
    }


def _visible(ch: Channel, me: User) -> bool:
    if ch.is_im:
        return ch.im_user == me.id
    if ch.is_private or ch.is_mpim:
        return me.id in ch.members
    return not ch.is_archived


def snapshot(emu: SlackEmulator, user_ref: str, personas: Mapping[str, str]) -> JSON:
    """Everything the page draws for ``user_ref`` (an id or name)."""
    ws = emu.workspace
    me = emu.user(user_ref)
    dm = emu.dm_channel(me.id)  # Slack always shows the app's Messages tab
    channels = [ch for ch in ws.channels.values() if _visible(ch, me)]
    messages: dict[str, list[JSON]] = {}
    for ch in channels:
        if me.id in ch.members:
            messages[ch.id] = emu.messages(ch.id, include_replies=True)
    modal_stack = emu.open_views(me.id)
    modal = modal_stack[-1] if modal_stack else None
    if modal is not None:
        modal["errors"] = emu.view_errors(str(modal["id"]))
        modal["stack_depth"] = len(modal_stack)
    return {
        "team": {"id": ws.team_id, "name": ws.team_name, "domain": ws.team_domain},
        "bot": {
            "user_id": ws.bot_user_id,
            "name": ws.seed.bot_display_name,
            "bot_id": ws.bot_id,
        },
        "me": _user(me, personas),
        "users": [_user(u, personas) for u in ws.users.values()],
        "usergroups": [
            {"id": g.id, "handle": g.handle, "name": g.name, "users": list(g.users)}
            for g in ws.usergroups.values()
        ],
        "channels": [_channel(ch, me, emu) for ch in channels],
        "app_dm": dm.id,
        "messages": messages,
        "ephemerals": emu.ephemerals(me.id),
        "home": emu.home_view(me.id),
        "modal": modal,
    }
