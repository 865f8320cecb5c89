"""Model of the ``route`` step: the owner of a request by its label, SLA clocks, shadow mode."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from workflows.language.spec import Duration, Reference, StepBase, Strict


class SlaSpec(Strict):
    first_response: Duration | None = None
    close: Duration | None = None
    remind_before: Duration = Field(default=0.0, description="Remind this long before a breach")
    escalate_to: str | None = Field(default=None, description="Channel or user told at breach")


class OwnerDef(Strict):
    channel: str | None = Field(default=None, description="The card goes to this channel")
    user: str | None = Field(default=None, description="The card goes to this person by DM")
    group: str | None = Field(default=None, description="@handle mentioned on the card")
    oncall: list[str] = Field(default_factory=list, description="A rotation of user IDs")
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

    def people(self) -> list[Reference]:
        found: list[Reference] = []
        for label, owner in self.route.owners.items():
            if isinstance(owner, OwnerDef) and owner.user:
                found.append((("route", "owners", label, "user"), owner.user))
            if isinstance(owner, OwnerDef):
                where = ("route", "owners", label, "oncall")
                found += [((*where, i), who) for i, who in enumerate(owner.oncall)]
        return found
