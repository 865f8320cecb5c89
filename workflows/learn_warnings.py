"""What ``switchboard check`` tells authors about ``learn: true`` that cannot learn.

A classify step learns from the decisions people make on the route steps that route on
its label (``workflows/learned.py``). With no such route step there is nothing to learn
from, and ``learn: true`` silently does nothing: a warning, since the file still runs.
"""

from __future__ import annotations

from pathlib import Path

from workflows.extract_warnings import line_of_step, read_text
from workflows.language.steps.ai import ClassifyStep
from workflows.language.workflow import Workflow
from workflows.learned import route_steps_of


def unread_learning_warnings(path: Path, workflow: Workflow) -> list[tuple[int, str, str]]:
    """(line, field, message) for each ``learn: true`` no route step's label reads."""
    text = read_text(path)
    return [
        (
            line_of_step(text, step.id),
            f"steps.{step.id}.classify.learn",
            f"warning: learn: true, but no route step's label reads steps.{step.id}.label, "
            "so there are no decisions to learn from",
        )
        for step in workflow.steps
        if isinstance(step, ClassifyStep)
        and step.classify.learn
        and not route_steps_of(workflow, step.id)
    ]
