"""Executors of the kinds that need nothing outside the engine: set, post, wait, fail, switch,
end, call (their models: ``workflows/language/steps/basic.py``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from workflows.language.steps.basic import (
    CallStep,
    EndStep,
    FailStep,
    PostStep,
    SetStep,
    SwitchStep,
    WaitStep,
)
from workflows.ports import ChatMessage
from workflows.steps.base import StepContext, StepError, StepOutcome, evaluate
from workflows.steps.calls import CallContext, Connections, failure_of, load_function, read_only


async def run_set(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, SetStep)
    values = evaluate(ctx, ctx.step.set)
    shown = ", ".join(f"{k} = {_short(v)}" for k, v in values.items())
    return StepOutcome(output=values, summary=f"set {shown}")


async def run_post(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, PostStep)
    spec = ctx.step.post
    if spec.text is not None:
        message = ChatMessage("message", {"text": str(evaluate(ctx, spec.text))})
    else:
        assert spec.template is not None
        data = dict(ctx.scope) | {"data": evaluate(ctx, spec.data)}
        message = ChatMessage(spec.template, data)
    thread_ts: str | None = None
    if spec.user:
        channel = f"@{evaluate(ctx, spec.user)}"
    elif spec.channel:
        channel = str(evaluate(ctx, spec.channel))
    elif ctx.thread is not None:
        channel, thread_ts = ctx.thread.channel, ctx.thread.ts
    else:
        raise StepError("post has no channel and the run has no thread")
    ref = await ctx.send(channel, message, thread_ts, "post")
    where = "in the thread" if thread_ts else f"to {channel}"
    return StepOutcome(output={"channel": ref.channel, "ts": ref.ts}, summary=f"posted {where}")


async def run_wait(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, WaitStep)
    spec = ctx.step.wait
    now = ctx.clock.now()
    if spec.duration is not None:
        due = now + timedelta(seconds=spec.duration)
    else:
        raw = evaluate(ctx, spec.until)
        try:
            due = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
        except ValueError:
            raise StepError(f"wait until {raw!r}: not an ISO-8601 time") from None
        if due.tzinfo is None:
            raise StepError(f"wait until {raw!r}: give a time zone offset")
    return StepOutcome(
        output={"until": due.isoformat()},
        summary=f"waiting until {due:%Y-%m-%d %H:%M:%S} UTC",
        due_at=due,
    )


async def run_fail(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, FailStep)
    raise StepError(str(evaluate(ctx, ctx.step.fail)))


async def run_switch(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, SwitchStep)
    spec = ctx.step.switch
    value = str(evaluate(ctx, spec.value))
    target = spec.cases.get(value, spec.default)
    if target is None:
        raise StepError(f"switch: no case for {value!r} and no default")
    return StepOutcome(
        output={"value": value, "next": target}, summary=f"{value} → {target}", next_step=target
    )


async def run_end(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, EndStep)
    note = "" if ctx.step.end is True else str(evaluate(ctx, ctx.step.end))
    return StepOutcome(output={"note": note}, summary=note or "done", next_step=None)


async def run_call(ctx: StepContext) -> StepOutcome:
    """A custom Python step: ``module:function`` (see ``workflows/steps/calls.py``)."""
    assert isinstance(ctx.step, CallStep)
    reference = ctx.step.call.function
    try:
        function = load_function(reference, ctx.services.steps_dir)
    except (ImportError, AttributeError, SyntaxError) as exc:
        raise StepError(f"cannot load {reference}: {exc}") from None
    args = evaluate(ctx, ctx.step.call.args)
    try:
        result = (
            function(_call_context(ctx, args)) if _takes_context(function) else function(**args)
        )
        if inspect.isawaitable(result):
            result = await result
    except StepError:
        raise
    except Exception as exc:  # noqa: BLE001 - a user's function: its failure is the step's
        message, retryable = failure_of(exc)
        raise StepError(f"{reference}: {message}", retryable=retryable) from None
    if not isinstance(result, dict):
        raise StepError(f"{reference} returned {type(result).__name__}, not a mapping")
    return StepOutcome(output=result, summary=f"called {reference}")


def _takes_context(function: Callable[..., Any]) -> bool:
    """New-style functions name their first parameter ``ctx``; older ones take only args."""
    try:
        parameters = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return False
    return bool(parameters) and parameters[0] == "ctx"


def _call_context(ctx: StepContext, args: dict[str, Any]) -> CallContext:
    return CallContext(
        inputs=read_only(args),
        run=read_only(dict(ctx.scope)),
        connections=Connections(ctx.services.connectors),
        ai=ctx.services.ai,
        idempotency_key=ctx.idempotency_key,
        run_id=ctx.run_id,
        step_id=ctx.step.id,
        attempt=ctx.attempt,
    )


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
