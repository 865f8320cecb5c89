"""The ``email`` step: one message per step execution, sent by our SMTP connection.

Exactly once, in two layers. The ``Message-ID`` is derived from the run and step
(``message_id_for(ctx.idempotency_key, …)``), so every try sends the same message;
and once the server accepted it, ``workflows/steps/effects.py`` records it, so a
retried or re-executed step (a worker killed before the step's completion committed)
reports the recorded message instead of sending again. The window that remains: a
crash, or a connection lost, after the server's ``250`` and before the record commits
sends the message again — with the same ``Message-ID``, which mail systems drop.
"""

from __future__ import annotations

import json
from typing import Any

from connectors.email import EmailAttachment, EmailConnector, message_id_for
from connectors.errors import ConnectorError
from workflows.language.steps.connectors import Attachment, EmailStep
from workflows.steps.base import StepContext, StepError, StepOutcome, evaluate
from workflows.steps.effects import record_effect, recorded_effect

SENT = "email/sent"
MAX_RECIPIENTS = 100


def email_connector(ctx: StepContext, name: str) -> EmailConnector:
    registry = ctx.services.connectors
    if registry is None or name not in registry.names:
        raise StepError(f"connection {name!r} is not configured")
    try:
        return registry.email(name)
    except ConnectorError as exc:
        raise StepError(str(exc)) from None


def addresses(value: Any, field: str) -> list[str]:
    """A rendered ``to``/``cc``: a list, a comma-separated string, or nothing."""
    items = value if isinstance(value, list) else str(value or "").split(",")
    found = [str(item).strip() for item in items if str(item or "").strip()]
    if len(found) > MAX_RECIPIENTS:
        raise StepError(f"{field}: {len(found)} addresses, more than {MAX_RECIPIENTS}")
    bad = [a for a in found if "@" not in a or any(c in a for c in "\r\n<>,; ")]
    if bad:
        raise StepError(f"{field}: not an e-mail address: {bad[0][:80]!r}")
    return found


def attachment(ctx: StepContext, spec: Attachment) -> EmailAttachment:
    content = evaluate(ctx, spec.content)
    data = content if isinstance(content, str) else json.dumps(content, default=str, indent=2)
    return EmailAttachment(str(evaluate(ctx, spec.filename)), data.encode(), spec.content_type)


async def run_email(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, EmailStep)
    spec = ctx.step.email
    mail = email_connector(ctx, spec.connection)
    to, cc = addresses(evaluate(ctx, spec.to), "to"), addresses(evaluate(ctx, spec.cc), "cc")
    if not to:
        raise StepError("email: no recipient (`to` rendered empty)")
    message_id = message_id_for(ctx.idempotency_key, mail.config.from_addr)
    if await recorded_effect(ctx, SENT) is not None:
        return _outcome(spec.connection, message_id, to, {}, already_sent=True)
    try:
        result = await mail.send(
            to,
            str(evaluate(ctx, spec.subject)),
            str(evaluate(ctx, spec.text)),
            cc=cc,
            idempotency_key=ctx.idempotency_key,
            attachments=[attachment(ctx, item) for item in spec.attachments],
        )
    except ConnectorError as exc:
        raise StepError(str(exc), retryable=exc.retryable) from None
    await record_effect(ctx, SENT, f"smtp:{spec.connection}", message_id.strip("<>")[:32])
    return _outcome(spec.connection, message_id, to, result.refused, already_sent=False)


def _outcome(
    connection: str, message_id: str, to: list[str], refused: dict[str, str], *, already_sent: bool
) -> StepOutcome:
    told = "already e-mailed" if already_sent else "e-mailed"
    return StepOutcome(
        output={
            "message_id": message_id,
            "to": to,
            "refused": sorted(refused),
            "already_sent": already_sent,
        },
        summary=f"{told} {', '.join(to)}" + (f" ({len(refused)} refused)" if refused else ""),
        audit={"connection": connection, "recipients": len(to), "already_sent": already_sent},
    )
