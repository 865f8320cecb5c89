"""Step kinds: one executor per kind key of the definition language."""

from __future__ import annotations

from workflows.steps.base import StepExecutor
from workflows.steps.basic import (
    run_call,
    run_end,
    run_fail,
    run_post,
    run_set,
    run_switch,
    run_wait,
)

EXECUTORS: dict[str, StepExecutor] = {
    "set": run_set,
    "post": run_post,
    "wait": run_wait,
    "fail": run_fail,
    "switch": run_switch,
    "end": run_end,
    "call": run_call,
}
