"""The workflows the Socket Mode tests start: a command, an approval gate, an intake message."""

from __future__ import annotations

import textwrap
from pathlib import Path

EXPENSE = """
name: expense
title: Expense approval
triggers:
  - command: expense
steps:
  - id: review
    approve:
      channel: "#finance-approvals"
      approvers: ["@finance"]
      not_requester: true
      title: "Expense: {{ input.text }}"
      summary: "{{ input.user }} asks for {{ input.text }}"
  - id: book
    set: {booked: true}
"""

HELPDESK = """
name: helpdesk
title: Helpdesk intake
triggers:
  - message: {channel: "#general", match: '(?i)printer'}
steps:
  - id: ack
    post: {text: "Helpdesk has it: {{ input.text }}"}
"""


def write_workflows(folder: Path) -> Path:
    """hello (bundled shape: set + post), expense (approval) and helpdesk (message trigger)."""
    (folder / "expense.yaml").write_text(textwrap.dedent(EXPENSE))
    (folder / "helpdesk.yaml").write_text(textwrap.dedent(HELPDESK))
    (folder / "hello.yaml").write_text(
        (Path(__file__).resolve().parents[2] / "workflows/examples/hello.yaml").read_text()
    )
    return folder
