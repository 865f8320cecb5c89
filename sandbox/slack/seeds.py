"""How an emulated workspace is seeded: pydantic models, so a seed can also come from
a dict or a YAML file."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class UserSeed(BaseModel):
    """A human (or other bot) member of the workspace."""

    name: str
    real_name: str | None = None
    id: str | None = None
    is_bot: bool = False
    is_admin: bool = False
    email: str | None = None
    tz: str = "Europe/London"


class ChannelSeed(BaseModel):
    """A public or private channel; ``members`` are user names or ids, "*" for all."""

    name: str
    id: str | None = None
    is_private: bool = False
    members: list[str] | Literal["*"] = "*"
    bot_member: bool = True
    topic: str = ""
    purpose: str = ""


class UserGroupSeed(BaseModel):
    """A user group (``@handle``); ``users`` are user names or ids."""

    handle: str
    name: str | None = None
    id: str | None = None
    users: list[str] = Field(default_factory=list)
    description: str = ""


class WorkspaceSeed(BaseModel):
    """Everything needed to build a workspace; ids are generated when omitted."""

    team_id: str = "T0SANDBOX1"
    team_name: str = "Switchboard Sandbox"
    team_domain: str = "switchboard-sandbox"
    app_id: str = "A0SWITCHBD"
    bot_id: str = "B0SWITCHBD"
    bot_user_id: str = "U0SWITCHBD"
    bot_name: str = "switchboard"
    bot_display_name: str = "Switchboard"
    users: list[UserSeed] = Field(default_factory=list)
    channels: list[ChannelSeed] = Field(default_factory=list)
    usergroups: list[UserGroupSeed] = Field(default_factory=list)

    @classmethod
    def demo(cls) -> WorkspaceSeed:
        """A small workspace good for demos and tests."""
        return cls(
            users=[
                UserSeed(name="alice", real_name="Alice Archer", is_admin=True),
                UserSeed(name="bob", real_name="Bob Baker"),
                UserSeed(name="carol", real_name="Carol Chen"),
                UserSeed(name="dave", real_name="Dave Diaz"),
            ],
            channels=[
                ChannelSeed(name="general"),
                ChannelSeed(name="random", bot_member=False),
                ChannelSeed(name="ap-inbox"),
                ChannelSeed(name="finance-approvals", members=["alice", "carol"]),
                ChannelSeed(name="leadership", is_private=True, members=["alice"]),
            ],
            usergroups=[
                UserGroupSeed(handle="finance", users=["alice", "bob", "carol"]),
                UserGroupSeed(handle="finance-leads", users=["carol"]),
            ],
        )
