"""Every step kind's model, by kind: the one list of what a step may be.

Adding a kind: write its model (a ``StepBase`` subclass with ``KIND`` and a field of
that name) in a module here, add it to ``_TAGGED`` below, and give
``workflows/steps/__init__.py`` its executor (a test holds the two lists equal).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias, get_args

from pydantic import Discriminator, Tag

from workflows.language.spec import StepBase
from workflows.language.steps.ai import ClassifyStep, ExtractStep, SummarizeStep
from workflows.language.steps.approve import ApproveStep
from workflows.language.steps.ask import AskStep
from workflows.language.steps.basic import (
    CallStep,
    EndStep,
    FailStep,
    PostStep,
    SetStep,
    SwitchStep,
    WaitStep,
)
from workflows.language.steps.connectors import EmailStep, TicketStep, WebhookStep
from workflows.language.steps.digest import DigestStep
from workflows.language.steps.flow import (
    ForeachSpec,
    ForeachStep,
    ParallelSpec,
    ParallelStep,
    SubWorkflowStep,
)
from workflows.language.steps.http import HttpStep
from workflows.language.steps.route import RouteStep
from workflows.language.steps.sql import SqlStep


def step_kind(value: Any) -> str | None:
    """The kind key of a raw or parsed step (the one key that names a step kind)."""
    if isinstance(value, StepBase):
        return value.KIND
    if isinstance(value, dict):
        kinds = [key for key in value if key in STEP_MODELS]
        return kinds[0] if len(kinds) == 1 else None
    return None


# Spelled out so type checkers see the union of the models; STEP_MODELS is read from it.
_TAGGED: TypeAlias = (
    Annotated[SetStep, Tag(SetStep.KIND)]
    | Annotated[PostStep, Tag(PostStep.KIND)]
    | Annotated[WaitStep, Tag(WaitStep.KIND)]
    | Annotated[FailStep, Tag(FailStep.KIND)]
    | Annotated[SwitchStep, Tag(SwitchStep.KIND)]
    | Annotated[EndStep, Tag(EndStep.KIND)]
    | Annotated[CallStep, Tag(CallStep.KIND)]
    | Annotated[HttpStep, Tag(HttpStep.KIND)]
    | Annotated[SqlStep, Tag(SqlStep.KIND)]
    | Annotated[ApproveStep, Tag(ApproveStep.KIND)]
    | Annotated[ClassifyStep, Tag(ClassifyStep.KIND)]
    | Annotated[ExtractStep, Tag(ExtractStep.KIND)]
    | Annotated[SummarizeStep, Tag(SummarizeStep.KIND)]
    | Annotated[RouteStep, Tag(RouteStep.KIND)]
    | Annotated[DigestStep, Tag(DigestStep.KIND)]
    | Annotated[EmailStep, Tag(EmailStep.KIND)]
    | Annotated[TicketStep, Tag(TicketStep.KIND)]
    | Annotated[WebhookStep, Tag(WebhookStep.KIND)]
    | Annotated[ForeachStep, Tag(ForeachStep.KIND)]
    | Annotated[ParallelStep, Tag(ParallelStep.KIND)]
    | Annotated[SubWorkflowStep, Tag(SubWorkflowStep.KIND)]
    | Annotated[AskStep, Tag(AskStep.KIND)]
)
STEP_MODELS: dict[str, type[StepBase]] = {
    model.KIND: model for model in (get_args(member)[0] for member in get_args(_TAGGED))
}

AnyStep = Annotated[
    _TAGGED,
    Discriminator(
        step_kind,
        custom_error_type="unknown_step_kind",
        custom_error_message=f"a step needs exactly one kind key: {', '.join(STEP_MODELS)}",
    ),
]

# Inner steps of foreach/parallel are any step: resolved now that every kind is known.
for _model in (ForeachSpec, ParallelSpec, ForeachStep, ParallelStep):
    _model.model_rebuild(_types_namespace={"AnyStep": AnyStep})
