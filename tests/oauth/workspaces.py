"""Two emulated workspaces with their own people and channels, for the OAuth tests."""

from __future__ import annotations

from sandbox.slack import ChannelSeed, UserGroupSeed, UserSeed, WorkspaceSeed
from sandbox.slack.oauth import AppRegistration

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "oauth-client-secret-4c1d"
TEAM_A, TEAM_B = "T0ACME0001", "T0BETA0002"


def seed(team_id: str, prefix: str, name: str) -> WorkspaceSeed:
    """Slack's ids are unique across workspaces: every id here carries the team's prefix."""
    people = ["alice", "bob", "carol", "dave"]
    return WorkspaceSeed(
        team_id=team_id,
        team_name=name,
        team_domain=name.lower(),
        bot_id=f"B0{prefix}BOT",
        bot_user_id=f"U0{prefix}BOT",
        users=[
            UserSeed(name=p, real_name=f"{p.title()} of {name}", id=f"U{prefix}{p.upper()}")
            for p in people
        ],
        channels=[
            ChannelSeed(name="general", id=f"C{prefix}GENERAL"),
            ChannelSeed(name="ap-inbox", id=f"C{prefix}APINBOX"),
            ChannelSeed(
                name="finance-approvals", id=f"C{prefix}FINAPPR", members=["alice", "carol"]
            ),
        ],
        usergroups=[
            UserGroupSeed(handle="finance", id=f"S{prefix}FIN", users=["alice", "bob", "carol"]),
            UserGroupSeed(handle="finance-leads", id=f"S{prefix}LEADS", users=["carol"]),
        ],
    )


def seeds() -> list[WorkspaceSeed]:
    return [seed(TEAM_A, "ACME", "Acme"), seed(TEAM_B, "BETA", "Beta")]


def registration(
    redirect_url: str, *, rotation: bool = True, expires_in: int = 43200
) -> AppRegistration:
    return AppRegistration(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_urls=(redirect_url,),
        token_rotation_enabled=rotation,
        expires_in=expires_in,
    )
