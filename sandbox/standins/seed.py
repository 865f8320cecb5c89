"""The sandbox workspace the bundled example workflows expect: people, channels, groups.

One place for the demo (``sandbox/demo.py`` merges it into its own workspace) and the
end-to-end tests of the examples (``tests/examples/``). User IDs are fixed because
the stand-in HR directory and CRM (``sandbox/standins/data.py``) refer to people by
their Slack user ID, as a real directory synced with Slack would.
"""

from __future__ import annotations

from sandbox.slack import ChannelSeed, UserGroupSeed, UserSeed, WorkspaceSeed

# Slack user IDs of the example people; the stand-in directory and CRM use them.
USER_IDS: dict[str, str] = {
    "alice": "U0ALICE001",  # analyst; requester; a customer contact in #support-inbox
    "dana": "U0DANA0001",  # finance lead: approves invoice discrepancies
    "bob": "U0BOB00001",  # IT support, engineer
    "carol": "U0CAROL001",  # team lead: manager of Alice, Bob and Erin; triage
    "erin": "U0ERIN0001",  # account strategist: reviews campaign reports
    "frank": "U0FRANK001",  # compliance officer: reviews payment exceptions
}

REAL_NAMES: dict[str, str] = {
    "alice": "Alice Archer",
    "dana": "Dana Dorsey",
    "bob": "Bob Baker",
    "carol": "Carol Chen",
    "erin": "Erin Ellis",
    "frank": "Frank Fischer",
}


def examples_seed() -> WorkspaceSeed:
    """Everything the bundled example workflows need, and nothing else."""
    return WorkspaceSeed(
        team_name="Switchboard Demo",
        team_domain="switchboard-demo",
        users=[
            UserSeed(
                name=name,
                real_name=real_name,
                id=USER_IDS[name],
                email=f"{name}@example.com",
                is_admin=name == "carol",
            )
            for name, real_name in REAL_NAMES.items()
        ],
        channels=[
            ChannelSeed(name="general", purpose="Company-wide announcements and work."),
            ChannelSeed(name="ap-inbox", purpose="Vendor invoices arrive here (AP intake)."),
            ChannelSeed(
                name="finance-approvals",
                members=["dana", "carol", "alice"],
                purpose="Approval cards for invoices and spend.",
            ),
            ChannelSeed(
                name="support-inbox", purpose="Customer questions; Switchboard routes them."
            ),
            ChannelSeed(name="billing", members=["dana", "carol"], purpose="Billing inquiries."),
            ChannelSeed(name="it-help", purpose="Technical inquiries, laptops, access, accounts."),
            ChannelSeed(name="sales", members=["erin", "carol"], purpose="Sales inquiries."),
            ChannelSeed(
                name="triage",
                members=["carol", "bob", "dana"],
                purpose="Requests the AI was not sure about land here.",
            ),
            ChannelSeed(
                name="support-leads",
                members=["carol"],
                purpose="SLA breaches of customer inquiries are escalated here.",
            ),
            ChannelSeed(
                name="campaigns",
                members=["erin", "carol", "alice"],
                purpose="Campaign reports are prepared and reviewed here.",
            ),
            ChannelSeed(
                name="client-acme",
                members=["erin", "carol"],
                purpose="Shared with ACME: their campaign reports.",
            ),
            ChannelSeed(
                name="compliance",
                members=["frank", "carol", "dana"],
                purpose="Payment exceptions and audit reports.",
            ),
        ],
        usergroups=[
            UserGroupSeed(handle="finance-leads", users=["dana"], description="Approve spend."),
            UserGroupSeed(handle="finance", users=["dana", "carol"]),
            UserGroupSeed(handle="strategists", users=["erin"], description="Review reports."),
            UserGroupSeed(handle="managers", users=["carol"], description="People managers."),
            UserGroupSeed(
                handle="compliance-officers", users=["frank"], description="Review exceptions."
            ),
        ],
    )


def with_examples(base: WorkspaceSeed) -> WorkspaceSeed:
    """``base`` plus whatever the examples need: users get the examples' IDs and e-mails,
    missing channels and groups are added, and shared ones get the union of members."""
    extra = examples_seed()
    users = {u.name: u for u in base.users}
    for user in extra.users:
        if user.name in users:
            known = users[user.name]
            users[user.name] = known.model_copy(
                update={"id": known.id or user.id, "email": known.email or user.email}
            )
        else:
            users[user.name] = user
    channels = {c.name: c for c in base.channels}
    for channel in extra.channels:
        if channel.name not in channels:
            channels[channel.name] = channel
            continue
        shared = channels[channel.name]
        if isinstance(shared.members, list) and isinstance(channel.members, list):
            members = shared.members + [m for m in channel.members if m not in shared.members]
            channels[channel.name] = shared.model_copy(update={"members": members})
    groups = {g.handle: g for g in base.usergroups}
    for group in extra.usergroups:
        if group.handle not in groups:
            groups[group.handle] = group
            continue
        base_group = groups[group.handle]
        people = base_group.users + [u for u in group.users if u not in base_group.users]
        groups[group.handle] = base_group.model_copy(update={"users": people})
    return base.model_copy(
        update={
            "users": list(users.values()),
            "channels": list(channels.values()),
            "usergroups": list(groups.values()),
        }
    )
