"""Model of the ``approve`` step: a card with buttons, reminders, a timeout and escalation."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from workflows.language.inputs import MAX_FIELDS, InputField, check_fields
from workflows.language.spec import (
    NAME_PATTERN,
    Duration,
    Reference,
    StepBase,
    Strict,
    ValueType,
)


class OutcomeButton(Strict):
    id: str = Field(pattern=NAME_PATTERN)
    label: str = Field(description="The button, as an action: 'Request changes'")
    style: Literal["primary", "danger"] | None = None
    done: str | None = Field(
        default=None,
        max_length=70,
        description="The settled card's words for it: 'Changes requested' (then: by @erin); "
        "default: the label, 'chosen by @erin'",
    )
    reason: bool = Field(
        default=False,
        description="Ask the decider why in a modal (as Reject does); the reason is on the "
        "card and in steps.<id>.reason",
    )


class Escalation(Strict):
    escalate_to: list[str] = Field(min_length=1)
    timeout: Duration | None = Field(default=None, description="For the escalated level")


class GotoOnTimeout(Strict):
    goto: str


class EscalationLevel(Strict):
    approvers: list[str] = Field(
        min_length=1,
        description="Added to the gate at this level (@group or @person, e-mail, ID, #channel)",
    )
    timeout: Duration | None = Field(
        default=None, description="How long this level has before the next (required)"
    )
    remind_every: Duration | None = Field(default=None, description="Nudge this level's people")

    @model_validator(mode="after")
    def _times_out(self) -> EscalationLevel:
        if self.timeout is None:
            raise ValueError("every level needs a timeout, or the chain could wait forever")
        return self


class EscalationChain(Strict):
    """Levels after the step's own approvers, in order; ``then`` when the last times out."""

    levels: list[EscalationLevel] = Field(min_length=1, max_length=10)
    then: Literal["reject", "approve"] | GotoOnTimeout | None = Field(
        default=None, description="The final action (required): every chain ends"
    )

    @model_validator(mode="after")
    def _ends(self) -> EscalationChain:
        if self.then is None:
            raise ValueError("a chain needs a final action: then: reject, approve or {goto: step}")
        return self


class ApproveSpec(Strict):
    approvers: list[str] = Field(
        min_length=1,
        description="@group or @person (user:/group: to be explicit), e-mail, user ID, "
        "#channel (its members) or expressions",
    )
    channel: str | None = Field(default=None, description="Where the card goes (default: thread)")
    user: str | None = Field(default=None, description="Send the card as a DM instead")
    title: str = "Approval needed"
    summary: str = ""
    fields: dict[str, str] = Field(default_factory=dict)
    outcomes: list[OutcomeButton] = Field(default_factory=list)
    approve_fields: list[InputField] = Field(
        default_factory=list,
        max_length=MAX_FIELDS,
        description="Asked for on Approve (e.g. a cost centre): a form, steps.<id>.answer",
    )
    min_approvals: int = Field(default=1, ge=1, le=50)
    not_requester: bool = Field(default=False, description="Four-eyes: requesters can't approve")
    template: str = "approval_card"
    remind_every: Duration | None = None
    timeout: Duration | None = None
    on_timeout: Literal["reject", "approve"] | Escalation | GotoOnTimeout = "reject"
    escalation: EscalationChain | None = Field(
        default=None, description="manager -> director -> VP: levels, then a final action"
    )
    next: dict[str, str] = Field(
        default_factory=dict,
        description="outcome -> step id; default: approved goes on, any other outcome ends the run",
    )

    @model_validator(mode="after")
    def _one_target(self) -> ApproveSpec:
        if self.channel and self.user:
            raise ValueError("give channel or user, not both")
        check_fields(self.approve_fields)
        if self.escalation is not None:
            self._check_chain(self.escalation)
        return self

    def _check_chain(self, chain: EscalationChain) -> None:
        if "on_timeout" in self.model_fields_set:
            raise ValueError("give escalation (with its then:) or on_timeout, not both")
        if self.timeout is None:
            raise ValueError("escalation needs the step's timeout: when the first level ends")
        if chain.then == "approve" and self.not_requester:
            # Waiting out the chain must not approve what the requester may not approve.
            raise ValueError("then: approve would let a request approve itself (four-eyes)")


class ApproveStep(StepBase):
    KIND: ClassVar[str] = "approve"
    # The first pass says who was asked; the settled pass says what they decided.
    OUTPUT: ClassVar[tuple[str, ...]] = (
        "gate",
        "status",
        "approvers",
        "outcome",
        "decided_by",
        "decided_at",
        "reason",
        "approvals",
        "answer",
    )
    OUTPUT_TYPES: ClassVar[dict[str, ValueType]] = {
        "status": "text",
        "approvers": "list",
        "outcome": "text",
        "decided_by": "text",
        "decided_at": "text",
        "approvals": "list",
    }
    WAITS: ClassVar[bool] = True
    approve: ApproveSpec

    def jump_targets(self) -> list[Reference]:
        spec = self.approve
        targets: list[Reference] = [
            (("approve", "next", outcome), step) for outcome, step in spec.next.items()
        ]
        if isinstance(spec.on_timeout, GotoOnTimeout):
            targets.append((("approve", "on_timeout", "goto"), spec.on_timeout.goto))
        if spec.escalation is not None and isinstance(spec.escalation.then, GotoOnTimeout):
            targets.append((("approve", "escalation", "then", "goto"), spec.escalation.then.goto))
        return super().jump_targets() + targets

    def templates(self) -> list[Reference]:
        return [(("approve", "template"), self.approve.template)]

    def output_choices(self) -> dict[str, tuple[str, ...]]:
        custom = tuple(outcome.id for outcome in self.approve.outcomes)
        return {"outcome": ("approved", "rejected", "timed_out", *custom)}

    def people(self) -> list[Reference]:
        spec = self.approve
        found: list[Reference] = [
            (("approve", "approvers", i), who) for i, who in enumerate(spec.approvers)
        ]
        if isinstance(spec.on_timeout, Escalation):
            found += [
                (("approve", "on_timeout", "escalate_to", i), who)
                for i, who in enumerate(spec.on_timeout.escalate_to)
            ]
        for level, step in enumerate(spec.escalation.levels if spec.escalation else []):
            found += [
                (("approve", "escalation", "levels", level, "approvers", i), who)
                for i, who in enumerate(step.approvers)
            ]
        return found
