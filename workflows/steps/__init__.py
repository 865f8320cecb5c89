"""Step executors by kind: the engine's one list of what runs each kind of step.

Each kind's model lives in ``workflows/language/steps/`` and knows its own kind
key; this registry pairs it with its executor, so the key is never written twice.
Adding a kind: its model (and ``STEP_MODELS``), then ``workflows/steps/<kind>.py``
with an async executor, then one line below. A test holds both registries equal.
"""

from __future__ import annotations

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
from workflows.language.steps.flow import ForeachStep, ParallelStep, SubWorkflowStep
from workflows.language.steps.http import HttpStep
from workflows.language.steps.route import RouteStep
from workflows.language.steps.sql import SqlStep
from workflows.steps.ai import run_classify, run_extract, run_summarize
from workflows.steps.approve import run_approve
from workflows.steps.ask import run_ask
from workflows.steps.base import StepKind
from workflows.steps.basic import (
    run_call,
    run_end,
    run_fail,
    run_post,
    run_set,
    run_switch,
    run_wait,
)
from workflows.steps.connectors import run_ticket, run_webhook
from workflows.steps.digest import run_digest
from workflows.steps.email import run_email
from workflows.steps.flow import run_foreach, run_parallel
from workflows.steps.http import run_http
from workflows.steps.route import run_route
from workflows.steps.sql import run_sql
from workflows.steps.subflow import run_subworkflow

STEP_KINDS: dict[str, StepKind] = {
    kind.name: kind
    for kind in (
        StepKind(SetStep, run_set),
        StepKind(PostStep, run_post),
        StepKind(WaitStep, run_wait),
        StepKind(FailStep, run_fail),
        StepKind(SwitchStep, run_switch),
        StepKind(EndStep, run_end),
        StepKind(CallStep, run_call),
        StepKind(HttpStep, run_http),
        StepKind(SqlStep, run_sql),
        StepKind(ApproveStep, run_approve),
        StepKind(ClassifyStep, run_classify),
        StepKind(ExtractStep, run_extract),
        StepKind(SummarizeStep, run_summarize),
        StepKind(RouteStep, run_route),
        StepKind(DigestStep, run_digest),
        *(
            StepKind(EmailStep, run_email),
            StepKind(TicketStep, run_ticket),
            StepKind(WebhookStep, run_webhook),
            StepKind(AskStep, run_ask),
        ),
        *(StepKind(ForeachStep, run_foreach), StepKind(ParallelStep, run_parallel)),
        StepKind(SubWorkflowStep, run_subworkflow),
    )
}
