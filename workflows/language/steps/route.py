"""Model of the ``route`` step: the owner of a request by its label, SLA clocks, shadow mode."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from workflows.language.spec import Duration, Reference, StepBase, Strict


class SlaSpec(Strict):
    first_response: Duration | None = None
    close: Duration | None = None
    remind_before: Duration = Field(default=0.0, description="Remind this long before a breach")
    escalate_to: str | None = Field(default=None, description="Channel or user told at breach")


class OncallLookup(Strict):
    """Who is on call now, asked of an on-call system (a PagerDuty- or Opsgenie-shaped API)."""

    path: str = Field(description="GET under the route's oncall_connection, e.g. /oncalls")
    params: dict[str, str] = Field(
        default_factory=dict, description="Query parameters, e.g. {schedule_ids[]: PX1}"
    )
    user: str = Field(
        description="JSON path to the person in the answer: a Slack user ID or an e-mail, "
        "e.g. oncalls[0].user.email"
    )


class OwnerDef(Strict):
    channel: str | None = Field(default=None, description="The card goes to this channel")
    user: str | None = Field(default=None, description="The card goes to this person by DM")
    group: str | None = Field(default=None, description="@handle mentioned on the card")
    oncall: list[str] = Field(default_factory=list, description="A rotation of user IDs")
    oncall_from: OncallLookup | None = Field(
        default=None,
        description="Ask the on-call system (oncall_connection); on failure the card goes to "
        "the rotation, else the channel, else triage",
    )
    rotate: Literal["daily", "weekly"] = "weekly"
    sla: SlaSpec | None = None


class RouteSpec(Strict):
    label: str = Field(description="Expression for the label, e.g. {{ steps.kind.label }}")
    owners: dict[str, str | OwnerDef] = Field(min_length=1)
    triage: str = Field(description="Channel for requests nobody owns or the AI is unsure of")
    candidates: str | None = Field(default=None, description="Expression: [{label, confidence}]")
    confidence: str | None = None
    sla: SlaSpec | None = None
    shadow: bool = False
    until: Literal["claim", "close"] = "close"
    oncall_connection: str | None = Field(
        default=None, description="The http connection owners' oncall_from asks"
    )

    @model_validator(mode="after")
    def _lookups_have_a_connection(self) -> RouteSpec:
        asks = [
            label for label, o in self.owners.items() if isinstance(o, OwnerDef) and o.oncall_from
        ]
        if asks and not self.oncall_connection:
            raise ValueError(
                f"owner {asks[0]!r} has oncall_from: set the route's oncall_connection"
            )
        return self


class RouteStep(StepBase):
    KIND: ClassVar[str] = "route"
    # Assigned, shadowed, re-routed, claimed, closed: each pass adds what it learnt.
    OUTPUT: ClassVar[tuple[str, ...]] = (
        "assignment",
        "label",
        "owner",
        "status",
        "predicted",
        "shadow",
        "correct",
        "claimed_by",
        "closed_by",
    )
    WAITS: ClassVar[bool] = True
    route: RouteSpec

    def connection_reference(self) -> Reference | None:
        name = self.route.oncall_connection
        return (("route", "oncall_connection"), name) if name else None

    def connection_types(self) -> tuple[str, ...]:
        return ("http",)

    def people(self) -> list[Reference]:
        found: list[Reference] = []
        for label, owner in self.route.owners.items():
            if isinstance(owner, OwnerDef) and owner.user:
                found.append((("route", "owners", label, "user"), owner.user))
            if isinstance(owner, OwnerDef):
                where = ("route", "owners", label, "oncall")
                found += [((*where, i), who) for i, who in enumerate(owner.oncall)]
        return found
