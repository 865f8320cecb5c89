"""The ``http`` step: call a REST/JSON API through a named connection.

Request text must never steer where the request goes. ``path`` is rendered with
:meth:`~workflows.expressions.Expressions.render_path` (each value becomes one percent-encoded
segment; the author's literal text stays as written), query parameters come only from the
``params`` map (``query`` is its older name), and the connector's transport refuses any final
URL outside the connection's ``base_url`` before anything is sent.
"""

from __future__ import annotations

from connectors.errors import ConnectorError
from workflows.expressions import ExpressionError
from workflows.language.steps.http import HttpStep
from workflows.steps.base import StepContext, StepError, StepOutcome, connector_for, evaluate


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
