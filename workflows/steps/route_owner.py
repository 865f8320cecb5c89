"""Who a routed request goes to: a channel, a person, today's on-call, or triage.

An owner's ``oncall_from`` asks an on-call system (PagerDuty- or Opsgenie-shaped,
through the route's ``oncall_connection``) who is on call *now*, every time a request
is routed. An on-call system that is down, slow or answers in another shape must not
lose the request: the card then goes to the owner's own rotation, else its channel,
else triage, and the step's summary says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from connectors.errors import ConnectorError
from workflows.language.steps.route import OncallLookup, OwnerDef, RouteSpec
from workflows.ports import ChatError
from workflows.steps.base import StepContext, StepError, connector_for

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Owner:
    kind: str
    """``triage``, ``user`` or ``channel``."""
    id: str
    note: str = ""
    """Why the card did not go where the definition first says (an on-call lookup failed)."""


async def owner_for(ctx: StepContext, spec: RouteSpec, label: str | None) -> Owner:
    """Where the card goes for this label."""
    if label is None or label not in spec.owners:
        return Owner("triage", spec.triage)
    owner = spec.owners[label]
    if isinstance(owner, str):
        return Owner("user", owner) if owner.startswith("U") else Owner("channel", owner)
    note = ""
    if owner.oncall_from is not None:
        found, note = await _on_call_now(ctx, spec, owner.oncall_from)
        if found is not None:
            return Owner("user", found)
    return _fallback(ctx, spec, owner, note)


def _fallback(ctx: StepContext, spec: RouteSpec, owner: OwnerDef, note: str) -> Owner:
    if owner.oncall:
        period = ctx.clock.now().toordinal() // (1 if owner.rotate == "daily" else 7)
        return Owner("user", owner.oncall[period % len(owner.oncall)], note)
    if owner.user:
        return Owner("user", owner.user, note)
    if owner.channel:
        return Owner("channel", owner.channel, note)
    if owner.oncall_from is not None:
        return Owner("triage", spec.triage, note)
    raise StepError("an owner names no channel, user or on-call rotation")


async def _on_call_now(
    ctx: StepContext, spec: RouteSpec, lookup: OncallLookup
) -> tuple[str | None, str]:
    """The on-call person's user ID, or None and why not (one line, no response body)."""
    assert spec.oncall_connection is not None  # the model requires it with oncall_from
    connector = connector_for(ctx, spec.oncall_connection, "http")
    try:
        result = await connector.request(
            "GET", lookup.path, query=dict(lookup.params) or None, select=lookup.user
        )
    except ConnectorError as exc:
        return None, f"on-call lookup failed ({exc})"
    who = str(result.data or "").strip() if isinstance(result.data, str) else ""
    if _USER_ID.match(who):
        return who, ""
    if _EMAIL.match(who):
        try:
            found = await ctx.chat.user_by_email(who)
        except ChatError as exc:
            return None, f"on-call lookup failed ({exc})"
        return (found, "") if found else (None, "the on-call person is not in this workspace")
    return None, "on-call lookup failed (no user ID or e-mail at that path)"
