"""Step kinds: each module defines its YAML model and its executor; this is the one list.

Adding a kind: write ``workflows/steps/<kind>.py`` with a ``StepBase`` subclass
whose kind key is a field (e.g. ``approve: ApproveSpec``) and an async
executor, then add one ``StepKind`` line below. The definition language, the
JSON Schema and ``switchboard check`` pick it up from here.
"""

from __future__ import annotations

from workflows.steps.ai import (
    ClassifyStep,
    ExtractStep,
    SummarizeStep,
    run_classify,
    run_extract,
    run_summarize,
)
from workflows.steps.approve import ApproveStep, run_approve
from workflows.steps.base import StepKind
from workflows.steps.basic import (
    CallStep,
    EndStep,
    FailStep,
    PostStep,
    SetStep,
    SwitchStep,
    WaitStep,
    run_call,
    run_end,
    run_fail,
    run_post,
    run_set,
    run_switch,
    run_wait,
)
from workflows.steps.digest import DigestStep, run_digest
from workflows.steps.http import HttpStep, run_http
from workflows.steps.route import RouteStep, run_route
from workflows.steps.sql import SqlStep, run_sql

STEP_KINDS: dict[str, StepKind] = {
    kind.name: kind
    for kind in (
        StepKind("set", SetStep, run_set),
        StepKind("post", PostStep, run_post),
        StepKind("wait", WaitStep, run_wait),
        StepKind("fail", FailStep, run_fail),
        StepKind("switch", SwitchStep, run_switch),
        StepKind("end", EndStep, run_end),
        StepKind("call", CallStep, run_call),
        StepKind("http", HttpStep, run_http),
        StepKind("sql", SqlStep, run_sql),
        StepKind("approve", ApproveStep, run_approve),
        StepKind("classify", ClassifyStep, run_classify),
        StepKind("extract", ExtractStep, run_extract),
        StepKind("summarize", SummarizeStep, run_summarize),
        StepKind("route", RouteStep, run_route),
        StepKind("digest", DigestStep, run_digest),
    )
}
