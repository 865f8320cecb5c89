"""What the engine reports as it works, for metrics and traces; the engine never imports Prometheus.

``bot/metrics.py`` implements this with prometheus-client; tests and
benchmarks can pass ``NullObserver`` or a recorder of their own.
"""

from __future__ import annotations

from typing import Literal, Protocol

StepResult = Literal["ok", "retry", "failed", "skipped"]
RunStatus = Literal["succeeded", "failed", "rejected", "cancelled", "timed_out"]


class EngineObserver(Protocol):
    def step_finished(
        self, workflow: str, kind: str, result: StepResult, seconds: float, queue_delay: float
    ) -> None:
        """A step attempt ended; ``queue_delay`` is due time -> start, in seconds."""

    def run_finished(self, workflow: str, status: RunStatus, seconds: float) -> None: ...

    def lease_taken_over(self) -> None:
        """A job whose worker died (lease expired) was claimed again."""

    def step_deferred(self, workflow: str) -> None:
        """A step waited its turn: its workflow or connection was at its concurrency limit."""


class NullObserver:
    def step_finished(
        self, workflow: str, kind: str, result: StepResult, seconds: float, queue_delay: float
    ) -> None:
        return None

    def run_finished(self, workflow: str, status: RunStatus, seconds: float) -> None:
        return None

    def lease_taken_over(self) -> None:
        return None

    def step_deferred(self, workflow: str) -> None:
        return None
