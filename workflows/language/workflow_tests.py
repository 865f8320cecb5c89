"""A workflow file's own tests (``tests:``), run by ``switchboard test``; the engine ignores them.

Each test gives the request, the people's decisions on approval cards in order, recorded
answers for the AI and the connections, and what must come out: the path of steps that
ran, the run's status, step outputs and text the run posts. See ``bot/workflow_test.py``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from workflows.language.spec import Strict


class CaseInput(Strict):
    text: str = ""
    user: str = Field(default="U0TESTER", description="Who starts the run (the requester)")
    channel: str = Field(default="C0TEST", description="Where the run is started")


class StubResponse(Strict):
    """One recorded answer of a connection; the first unused one that matches is sent."""

    method: str | None = Field(default=None, description="Only for this method (default: any)")
    path: str | None = Field(default=None, description="Only for this path (default: any)")
    status: int = Field(default=200, ge=100, le=599)
    json_body: Any = Field(default=None, alias="json", description="The response body")


class Expectation(Strict):
    status: Literal["succeeded", "failed", "waiting"] = "succeeded"
    path: list[str] | None = Field(
        default=None, description="The ids of the steps that ran (skipped ones left out), in order"
    )
    outputs: dict[str, Any] = Field(
        default_factory=dict,
        description="'step.key' -> value; a string also matches a value that renders as it",
    )
    posted: list[str] = Field(
        default_factory=list, description="Text each found in some message the run posts"
    )


class Fixtures(Strict):
    """Recorded answers: of the AI (in call order, by kind) and of each connection."""

    ai: list[dict[Literal["classify", "extract", "summarize"], Any]] = Field(
        default_factory=list,
        description="{classify: LABEL | {label, confidence}}, {extract: {field: value}}, "
        "{summarize: TEXT}; a call without one is answered by the offline provider",
    )
    connections: dict[str, list[StubResponse]] = Field(default_factory=dict)


class WorkflowTest(Fixtures):
    name: str = Field(min_length=1)
    input: CaseInput = Field(default_factory=CaseInput)
    decisions: list[Literal["approve", "reject"]] = Field(
        default_factory=list, description="How the approver decides each approval, in order"
    )
    expect: Expectation = Field(default_factory=Expectation)
