"""The ``ticket`` and ``webhook`` steps (the ``email`` step: ``workflows/steps/email.py``).

A ticket carries its idempotency key as a label (``switchboard-<digest of the key>``,
Jira and GitHub alike) and a comment carries it as a hidden marker (a Jira comment
property, an HTML comment on GitHub): before creating, the step looks for what it made
on an earlier try, so a retry after a lost answer or a killed worker files nothing twice.
A Jira transition cannot carry a marker, so it is recorded once applied
(``workflows/steps/effects.py``). A webhook delivery carries ``Idempotency-Key: run:step``
on every try, for the receiver to dedupe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from connectors.base import IssueRef
from connectors.errors import ConnectorError
from connectors.github import GithubConnector
from connectors.jira import JiraConnector
from workflows.language.steps.connectors import TicketSpec, TicketStep, WebhookStep
from workflows.steps.base import StepContext, StepError, StepOutcome, evaluate
from workflows.steps.effects import record_effect, recorded_effect

Tracker = JiraConnector | GithubConnector
MAX_TICKETS = 50
TRANSITIONED = "ticket/transition"


def idempotency_label(key: str) -> str:
    """The label a ticket created under ``key`` carries (plain, short, the same every time)."""
    return f"switchboard-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def tracker(ctx: StepContext, name: str) -> Tracker:
    registry = ctx.services.connectors
    if registry is None or name not in registry.names:
        raise StepError(f"connection {name!r} is not configured")
    connector = registry.get(name)
    if not isinstance(connector, JiraConnector | GithubConnector):
        raise StepError(f"connection {name!r} is {connector.kind}, not jira or github")
    return connector


def _labels(value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value or "").split(",")
    return [str(item).strip() for item in items if str(item).strip()]


async def _create(
    connector: Tracker, spec: TicketSpec, fields: Mapping[str, Any], key: str
) -> tuple[IssueRef, bool]:
    """The ticket made under ``key``: found from an earlier try, or created now (True)."""
    label = idempotency_label(key)
    summary = str(fields.get("summary") or "").strip()
    if not summary:
        raise StepError("a ticket needs a summary")
    labels = [*_labels(fields.get("labels", [])), label]
    description = str(fields.get("description") or "")
    if isinstance(connector, JiraConnector):
        project = fields.get("project") or spec.project
        if not project:
            raise StepError("a Jira ticket needs a project")
        if (found := await connector.find_by_label(label)) is not None:
            return found, False
        issue_type = str(fields.get("issue_type") or spec.issue_type)
        created = await connector.create_issue(
            str(project),
            summary,
            issue_type=issue_type,
            description=description or None,
            fields={"labels": labels},
        )
        return created, True
    if (found := await connector.find_by_label(label, repo=spec.repo)) is not None:
        return found, False
    return await connector.create_issue(summary, description, repo=spec.repo, labels=labels), True


def _items(ctx: StepContext, spec: TicketSpec) -> list[Mapping[str, Any]]:
    single = {
        "summary": spec.summary,
        "description": spec.description,
        "labels": spec.labels,
        "issue_type": spec.issue_type,
        "project": spec.project,
    }
    if spec.each is None:
        return [evaluate(ctx, single)]
    items = evaluate(ctx, spec.each)
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise StepError("ticket each: the expression must give a list of mappings")
    if len(items) > MAX_TICKETS:
        raise StepError(f"ticket each: {len(items)} tickets, more than {MAX_TICKETS}")
    defaults = evaluate(ctx, {k: v for k, v in single.items() if k != "summary"})
    return [{**defaults, **item} for item in items]


async def _run_create(ctx: StepContext, connector: Tracker, spec: TicketSpec) -> StepOutcome:
    base_key = str(evaluate(ctx, spec.key)) if spec.key else ctx.idempotency_key
    tickets: list[dict[str, Any]] = []
    for index, fields in enumerate(_items(ctx, spec)):
        key = f"{base_key}:{index}" if spec.each is not None else base_key
        ref, created = await _create(connector, spec, fields, key)
        tickets.append({"key": ref.key, "url": ref.url, "existing": not created})
    first = tickets[0] if tickets else {"key": None, "url": None}
    existing = bool(tickets) and all(t["existing"] for t in tickets)
    shown = ", ".join(t["key"] for t in tickets) or "no tickets"
    return StepOutcome(
        output={"key": first["key"], "url": first["url"], "tickets": tickets, "existing": existing},
        summary=f"{'found' if existing else 'filed'} {shown}",
        audit={"connection": spec.connection, "tickets": len(tickets), "existing": existing},
    )


async def _run_comment(ctx: StepContext, connector: Tracker, spec: TicketSpec) -> StepOutcome:
    issue, text = str(evaluate(ctx, spec.issue)), str(evaluate(ctx, spec.text))
    marker = str(evaluate(ctx, spec.key)) if spec.key else ctx.idempotency_key
    if isinstance(connector, JiraConnector):
        found = await connector.find_comment(issue, marker)
        ref = found or await connector.comment(issue, text, marker=marker)
    else:
        number = _issue_number(issue)
        found = await connector.find_comment(number, marker, repo=spec.repo)
        ref = found or await connector.comment(number, text, repo=spec.repo, marker=marker)
    return StepOutcome(
        output={"key": issue, "url": ref.url, "existing": found is not None},
        summary=f"{'found the comment on' if found else 'commented on'} {issue}",
        audit={"connection": spec.connection, "existing": found is not None},
    )


def _issue_number(issue: str) -> int:
    number = issue.rpartition("#")[2]
    if not number.isdigit():
        raise StepError(f"not a GitHub issue number: {issue[:40]!r}")
    return int(number)


async def _run_transition(ctx: StepContext, connector: Tracker, spec: TicketSpec) -> StepOutcome:
    if not isinstance(connector, JiraConnector):
        raise StepError(f"connection {spec.connection!r} is github: transitions are Jira's")
    issue, wanted = str(evaluate(ctx, spec.issue)), str(evaluate(ctx, spec.transition))
    done = await recorded_effect(ctx, TRANSITIONED)
    if done is None:
        done = await connector.transition(issue, wanted)
        await record_effect(ctx, TRANSITIONED, f"jira:{spec.connection}", done)
    return StepOutcome(
        output={"key": issue, "transition": done},
        summary=f"moved {issue} ({wanted})",
        audit={"connection": spec.connection, "transition": done},
    )


async def run_ticket(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, TicketStep)
    spec = ctx.step.ticket
    connector = tracker(ctx, spec.connection)
    action = {"create": _run_create, "comment": _run_comment, "transition": _run_transition}
    try:
        return await action[spec.action](ctx, connector, spec)
    except ConnectorError as exc:
        raise StepError(str(exc), retryable=exc.retryable) from None


async def run_webhook(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, WebhookStep)
    spec = ctx.step.webhook
    registry = ctx.services.connectors
    if registry is None or spec.connection not in registry.names:
        raise StepError(f"connection {spec.connection!r} is not configured")
    try:
        hook = registry.webhook_out(spec.connection)
        result = await hook.post(evaluate(ctx, spec.json_body), idempotency_key=ctx.idempotency_key)
    except ConnectorError as exc:
        raise StepError(str(exc), retryable=exc.retryable) from None
    return StepOutcome(
        output={
            "status": result.status_code,
            "data": result.data,
            "idempotency_key": ctx.idempotency_key,
        },
        summary=f"webhook {spec.connection} → {result.status_code}",
        audit={"connection": spec.connection, "status": result.status_code},
    )
