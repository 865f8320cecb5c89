"""The ``http`` step: call a REST/JSON API through a named connection.

Request text must never steer where the request goes. ``path`` is rendered with
:meth:`~workflows.expressions.Expressions.render_path` (each value becomes one percent-encoded
segment; the author's literal text stays as written), query parameters come only from the
``params`` map (``query`` is its older name), and the connector's transport refuses any final
URL outside the connection's ``base_url`` before anything is sent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator

from connectors.errors import ConnectorError
from workflows.expressions import ExpressionError
from workflows.spec import StepBase, Strict
from workflows.steps.base import StepContext, StepError, StepOutcome, connector_for, evaluate


class HttpSpec(Strict):
    connection: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str = "/"
    params: dict[str, Any] = Field(
        default_factory=dict,
        validation_alias=AliasChoices("params", "query"),
        description="Query parameters (encoded by the client; `query` is the older name)",
    )
    json_body: Any = Field(default=None, alias="json")
    select: str | None = Field(default=None, description="JSON path into the response")

    @model_validator(mode="before")
    @classmethod
    def _one_name_for_params(cls, data: Any) -> Any:
        if isinstance(data, dict) and "params" in data and "query" in data:
            raise ValueError("give query parameters as `params` or `query`, not both")
        return data

    @property
    def query(self) -> dict[str, Any]:
        """The older name of ``params`` (thresholds read it)."""
        return self.params


class HttpStep(StepBase):
    http: HttpSpec

    def connection(self) -> str:
        return self.http.connection


def render_path(ctx: StepContext, source: str) -> str:
    try:
        return ctx.expressions.render_path(source, ctx.scope)
    except ExpressionError as exc:
        raise StepError(f"expression failed: {exc}") from None


async def run_http(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, HttpStep)
    spec = ctx.step.http
    connector = connector_for(ctx, spec.connection, "http")
    path = render_path(ctx, spec.path)
    try:
        result = await connector.request(
            spec.method,
            path,
            query=evaluate(ctx, spec.params) or None,
            json=evaluate(ctx, spec.json_body),
            idempotency_key=ctx.idempotency_key,
            select=spec.select,
        )
    except ConnectorError as exc:
        raise StepError(str(exc), retryable=exc.retryable) from None
    return StepOutcome(
        output={"status": result.status_code, "data": result.data},
        summary=f"{spec.method} {spec.connection}{path} → {result.status_code}",
        audit={"connection": spec.connection, "status": result.status_code},
    )
