"""What ``switchboard check`` tells authors about ``allowed_starters`` and ``in``.

A ``#channel`` in ``allowed_starters`` used to limit where a command was typed;
it now means the channel's members, wherever they type, and ``in:`` says where.
An old configuration still loads (a warning, not an error), with the one line
that keeps its old meaning.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from workflows.language.workflow import Workflow

_KEY_LINE = re.compile(r"^\s*allowed_starters\s*:", re.MULTILINE)


def channel_starter_warnings(path: Path, workflow: Workflow) -> list[tuple[int, str, str]]:
    """(line, field, message) for each ``#channel`` in ``allowed_starters`` not also in ``in``."""
    line = _line_of_allowed_starters(path)
    warnings = []
    for entry in workflow.allowed_starters:
        if entry.startswith("#") and entry not in workflow.in_channels:
            warnings.append(
                (
                    line,
                    "allowed_starters",
                    f"warning: {entry} now means the members of {entry}, wherever they type; "
                    f"to allow only commands typed in {entry}, write in: {json.dumps([entry])}",
                )
            )
    return warnings


def _line_of_allowed_starters(path: Path) -> int:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 1
    match = _KEY_LINE.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else 1
