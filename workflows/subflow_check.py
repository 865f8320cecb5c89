"""What ``check`` says about ``workflow`` steps across a folder: the child exists, no cycles.

A file alone cannot know these, so ``workflows/loader.py`` asks once every file is
loaded. A step that starts an unknown workflow, or one that leads back to its own
workflow (directly or through others: runs would nest forever), is an error at the
step's ``workflow.name`` line, and its workflow does not load.
"""

from __future__ import annotations

from collections.abc import Mapping

from workflows.language.spec import FieldPath
from workflows.language.steps.flow import SubWorkflowStep
from workflows.language.workflow import Workflow

Problem = tuple[str, FieldPath, str]
"""(workflow name, field path, message)."""


def children(workflow: Workflow) -> list[tuple[int, str]]:
    """(step index, child workflow name) of each ``workflow`` step."""
    return [
        (index, step.workflow.name)
        for index, step in enumerate(workflow.steps)
        if isinstance(step, SubWorkflowStep)
    ]


def subworkflow_problems(workflows: Mapping[str, Workflow]) -> list[Problem]:
    problems: list[Problem] = []
    for name, workflow in workflows.items():
        for index, child in children(workflow):
            key: FieldPath = ("steps", index, "workflow", "name")
            if child not in workflows:
                problems.append((name, key, f"no workflow {child!r} is loaded"))
                continue
            path = _path_back(workflows, child, name)
            if path is not None:
                loop = " -> ".join([name, *path])
                problems.append((name, key, f"workflows start each other in a loop: {loop}"))
    return problems


def _path_back(workflows: Mapping[str, Workflow], start: str, target: str) -> list[str] | None:
    """The chain of workflows from ``start`` that reaches ``target``, if any."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        current, path = stack.pop()
        if current == target:
            return path
        if current in seen or current not in workflows:
            continue
        seen.add(current)
        stack.extend((child, [*path, child]) for _, child in children(workflows[current]))
    return None
