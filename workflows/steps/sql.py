"""The ``sql`` step: a parameterised query through a named connection (read-only by default)."""

from __future__ import annotations

from connectors.errors import ConnectorError
from workflows.language.steps.sql import SqlStep
from workflows.steps.base import StepContext, StepError, StepOutcome, connector_for, evaluate


async def run_sql(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, SqlStep)
    spec = ctx.step.sql
    connector = connector_for(ctx, spec.connection, "sql")
    try:
        result = await connector.query(spec.query, evaluate(ctx, spec.params))
    except ConnectorError as exc:
        raise StepError(str(exc), retryable=exc.retryable) from None
    rows = len(result.rows)
    more = " (truncated)" if result.truncated else ""
    return StepOutcome(
        output={"rows": result.rows, "count": rows, "truncated": result.truncated},
        summary=f"{rows} row{'s' if rows != 1 else ''} from {spec.connection}{more}",
        audit={"connection": spec.connection, "rows": rows},
    )
