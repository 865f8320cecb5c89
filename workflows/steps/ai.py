"""AI steps: ``classify``, ``extract`` and ``summarize``, over whichever provider is configured.

Every result carries the provider, model and prompt version, and goes into the
step's output and its audit record. A classification below ``min_confidence``
— or a provider that fails after its own retries — is never dropped: the
step answers ``label: null, triage: true`` with the top candidates, and the
workflow's ``on_low_confidence`` decides where it goes (a ``route`` step sends
it to the human triage channel by default).
"""

from __future__ import annotations

from typing import Any

from connectors.ai.base import (
    AIError,
    AIProvider,
    ClassifyRequest,
    ExtractRequest,
    FieldSpec,
    LabelSpec,
    Provenance,
    SummarizeRequest,
)
from connectors.ai.money import Money
from workflows.language.steps.ai import ClassifySpec, ClassifyStep, ExtractStep, SummarizeStep
from workflows.learned import examples_for, with_learned
from workflows.steps.base import StepContext, StepError, StepOutcome, evaluate


async def _classify_request(ctx: StepContext, spec: ClassifySpec) -> tuple[ClassifyRequest, int]:
    """The request for the provider, with what people taught a ``learn: true`` step, and
    how many learned examples it carries."""
    labels = [
        LabelSpec(
            name=name,
            description=d.description,
            examples=d.examples,
            example_groups=d.example_groups,
        )
        for name, d in spec.labels.items()
    ]
    assert isinstance(ctx.step, ClassifyStep)
    learned = await examples_for(ctx.store, ctx.workflow, ctx.step) if spec.learn else []
    request = ClassifyRequest(
        text=str(evaluate(ctx, spec.text)),
        labels=with_learned(labels, [(e.text, e.label) for e in learned]),
        model=spec.model,
        # A learning step's model is refitted in the background as its examples change.
        model_family=f"{ctx.workflow.name}:{ctx.step.id}" if spec.learn else None,
    )
    return request, len(learned)


async def run_classify(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, ClassifyStep)
    spec = ctx.step.classify
    request, learned = await _classify_request(ctx, spec)
    try:
        answer = await _provider(ctx).classify(request)
    except AIError as exc:
        # The provider chain already fell through every provider: a person decides.
        output: dict[str, Any] = {
            "label": None,
            "confidence": 0.0,
            "triage": True,
            "candidates": [],
            "error": type(exc).__name__,
        }
        failed = StepOutcome(
            output=output,
            audit={"triage": True, "error": type(exc).__name__},
            summary=f"AI unavailable ({type(exc).__name__}): to triage",
        )
        if spec.on_low_confidence:
            failed.next_step = spec.on_low_confidence
        return failed
    unsure = answer.confidence < spec.min_confidence
    candidates = [c.model_dump() for c in answer.candidates[:5]]
    output = {
        "label": None if unsure else answer.label,
        "guess": answer.label,
        "confidence": round(answer.confidence, 4),
        "triage": unsure,
        "candidates": candidates,
        "rationale": answer.rationale,
        "provenance": answer.provenance.model_dump(),
    }
    summary = (
        f"unsure (best guess {answer.label}, {answer.confidence:.2f} < "
        f"{spec.min_confidence:.2f}): to triage"
        if unsure
        else f"{answer.label} ({answer.confidence:.2f})"
    )
    outcome = StepOutcome(
        output=output,
        summary=summary,
        audit=_audit(answer.provenance)
        | {"label": answer.label, "confidence": round(answer.confidence, 4), "triage": unsure}
        | ({"learned": learned} if spec.learn else {}),
    )
    if unsure and spec.on_low_confidence:
        outcome.next_step = spec.on_low_confidence
    return outcome


async def run_extract(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, ExtractStep)
    spec = ctx.step.extract
    fields = [
        FieldSpec(name=name, type=d)
        if isinstance(d, str)
        else FieldSpec(
            name=name,
            type=d.type,
            description=d.description,
            pattern=d.pattern,
            required=d.required,
        )
        for name, d in spec.fields.items()
    ]
    try:
        answer = await _provider(ctx).extract(
            ExtractRequest(text=str(evaluate(ctx, spec.text)), fields=fields, model=spec.model)
        )
    except AIError as exc:
        raise StepError(f"extraction failed: {exc}", retryable=True) from None
    values, missing = typed_values(fields, answer.values, answer.missing)
    found = ", ".join(f"{k}={v}" for k, v in values.items() if v is not None)
    missed = f"; missing {', '.join(missing)}" if missing else ""
    method = " (rules)" if answer.method == "rules" else ""
    return StepOutcome(
        output=values
        | {
            "missing": missing,
            "method": answer.method,
            "provenance": answer.provenance.model_dump(),
        },
        summary=f"extracted{method} {found or 'nothing'}{missed}",
        audit=_audit(answer.provenance) | {"missing": missing, "method": answer.method},
    )


def typed_values(
    fields: list[FieldSpec], values: dict[str, Any], missing: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """Each field as its type's Python value (``EXTRACT_TYPES``); money becomes ``Money``.

    A provider answers money as text (``"640.00 EUR"``) or a bare number; one that is
    neither is not found, and a required field not found is missing.
    """
    typed = dict(values)
    missing = list(missing)
    for spec in fields:
        if spec.type != "money" or typed.get(spec.name) is None:
            continue
        raw = typed[spec.name]
        money = (
            Money.parse(raw)
            if isinstance(raw, str)
            else Money(raw)
            if isinstance(raw, int | float) and not isinstance(raw, bool)
            else None
        )
        typed[spec.name] = money
        if money is None and spec.required and spec.name not in missing:
            missing.append(spec.name)
    return typed, missing


async def run_summarize(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, SummarizeStep)
    spec = ctx.step.summarize
    try:
        answer = await _provider(ctx).summarize(
            SummarizeRequest(
                text=str(evaluate(ctx, spec.text)),
                max_sentences=spec.max_sentences,
                model=spec.model,
            )
        )
    except AIError as exc:
        raise StepError(f"summary failed: {exc}", retryable=True) from None
    marker = " (extractive)" if answer.method == "extractive" else ""
    return StepOutcome(
        output={
            "text": answer.text,
            "method": answer.method,
            "provenance": answer.provenance.model_dump(),
        },
        summary=f"summary{marker}: {answer.text}",
        audit=_audit(answer.provenance) | {"method": answer.method},
    )


def _provider(ctx: StepContext) -> AIProvider:
    if ctx.services.ai is None:
        raise StepError("no AI provider is configured")
    return ctx.services.ai


def _audit(provenance: Provenance) -> dict[str, Any]:
    """What the trail keeps of an AI call: who answered and what it cost; never the text."""
    return {
        "provider": provenance.provider,
        "model": provenance.model,
        "prompt_version": provenance.prompt_version,
        "tokens": provenance.usage.prompt_tokens + provenance.usage.completion_tokens,
        "cost_usd": round(provenance.usage.cost_usd, 6),
        "redactions": provenance.redactions,
    } | ({"model_version": provenance.model_version} if provenance.model_version else {})
