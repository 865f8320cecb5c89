"""The ``http`` step: call a REST/JSON API through a named connection."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from connectors.errors import ConnectorError
from workflows.spec import StepBase, Strict
from workflows.steps.base import StepContext, StepError, StepOutcome, connector_for, evaluate


class HttpSpec(Strict):
    connection: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str = "/"
    query: dict[str, Any] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    select: str | None = Field(default=None, description="JSON path into the response")


class HttpStep(StepBase):
    http: HttpSpec

    def connection(self) -> str:
        return self.http.connection


async def run_http(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, HttpStep)
    spec = ctx.step.http
    connector = connector_for(ctx, spec.connection, "http")
    path = str(evaluate(ctx, spec.path))
    try:
        result = await connector.request(
            spec.method,
            path,
            query=evaluate(ctx, spec.query) or None,
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
