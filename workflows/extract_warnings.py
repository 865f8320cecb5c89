"""What ``switchboard check`` tells authors about ``extract`` fields offline.

Without an AI provider (the local one) a field is filled only by a pattern: the
built-in one of its type (``money``, ``date``, ``email``, ``int``, ``float``, ``bool``)
or its own ``pattern:``. A ``str`` field has no built-in pattern, so without one it
is always missing offline. That is a warning, not an error: with a model it works.
"""

from __future__ import annotations

import re
from pathlib import Path

from workflows.language.steps.ai import ExtractStep
from workflows.language.workflow import Workflow


def offline_extract_warnings(path: Path, workflow: Workflow) -> list[tuple[int, str, str]]:
    """(line, field, message) for each ``str`` field the offline extractor cannot fill."""
    text = read_text(path)
    warnings = []
    for step in workflow.steps:
        if not isinstance(step, ExtractStep):
            continue
        for name in step.extract.offline_unfillable():
            warnings.append(
                (
                    line_of_step(text, step.id),
                    f"steps.{step.id}.extract.fields.{name}",
                    f"warning: {name} is a str field without pattern:, so the offline "
                    "extractor never fills it (only an AI model can); add "
                    f"pattern: with one group, e.g. {name}: {{type: str, pattern: "
                    f"'{name}: (.+)'}}",
                )
            )
    return warnings


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def line_of_step(text: str, step_id: str) -> int:
    match = re.search(rf"^\s*-\s*id:\s*['\"]?{re.escape(step_id)}['\"]?\s*$", text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else 1
