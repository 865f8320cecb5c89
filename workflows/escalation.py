"""Escalation chains: which level comes next when a gate's time runs out, and how it ends.

An approve step's own approvers are level 0. ``escalation: {levels, then}`` adds levels
1..N, each with its approvers (added to the gate: earlier levels may still decide), its
timeout and optional reminders; when the last level times out, ``then`` settles the gate
(reject, approve, or go to a step). The old ``on_timeout: {escalate_to, timeout}`` is a
one-level chain whose end is ``timed_out``, as it always was. Every level has a timeout
(the model requires it), so a chain always ends; only the old form's escalated level may
wait without one, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from workflows.language.steps.approve import ApproveSpec, Escalation, GotoOnTimeout

Final = Literal["rejected", "approved", "timed_out"]


@dataclass(frozen=True)
class Level:
    number: int
    """1 for the first escalation; the gate's ``escalation_level`` once it is reached."""
    approvers: list[str]
    timeout: float | None
    remind_every: float | None


@dataclass(frozen=True)
class Chain:
    levels: list[Level]
    outcome: Final
    """How the gate settles when the last level times out."""
    goto: str | None = None


def chain_of(spec: ApproveSpec) -> Chain | None:
    """The step's chain in one shape, whichever way it was written; None if it has none."""
    if spec.escalation is not None:
        levels = [
            Level(n, level.approvers, level.timeout, level.remind_every)
            for n, level in enumerate(spec.escalation.levels, start=1)
        ]
        then = spec.escalation.then
        if isinstance(then, GotoOnTimeout):
            return Chain(levels, "timed_out", then.goto)
        return Chain(levels, "approved" if then == "approve" else "rejected")
    if isinstance(spec.on_timeout, Escalation):
        old = spec.on_timeout
        level = Level(1, old.escalate_to, old.timeout or spec.timeout, spec.remind_every)
        return Chain([level], "timed_out")
    return None


def next_level(chain: Chain | None, current: int) -> Level | None:
    """The level after ``current`` (the gate's escalation level), or None at the end."""
    if chain is None or current >= len(chain.levels):
        return None
    return chain.levels[current]


def remind_interval(spec: ApproveSpec, level: int) -> float | None:
    """How often the people at ``level`` are nudged (level 0: the step's own setting)."""
    if level == 0:
        return spec.remind_every
    chain = chain_of(spec)
    if chain is None or level > len(chain.levels):
        return None
    return chain.levels[level - 1].remind_every


def final_outcome(spec: ApproveSpec, lacking: bool) -> tuple[str, str | None]:
    """(outcome, goto step) when the gate's time is finally up."""
    chain = chain_of(spec)
    if chain is not None:
        outcome: str = chain.outcome
        goto = chain.goto
    elif isinstance(spec.on_timeout, GotoOnTimeout):
        outcome, goto = "timed_out", spec.on_timeout.goto
    else:
        outcome = "approved" if spec.on_timeout == "approve" else "rejected"
        goto = None
    if outcome == "approved" and lacking:
        outcome = "rejected"  # a gate nobody but the requester could decide never approves itself
    return outcome, goto


def final_words(spec: ApproveSpec, level: int) -> str:
    """What happens now when a gate at ``level`` can't be decided (for its thread)."""
    chain = chain_of(spec)
    if next_level(chain, level) is not None:
        return "escalating now"
    outcome, goto = final_outcome(spec, lacking=True)
    if goto:
        return f"going on to {goto} now"
    return "closing it as timed out now" if outcome == "timed_out" else "rejecting it now"
