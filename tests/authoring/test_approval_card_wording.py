"""The approval card speaks the workflow's words for its custom outcomes.

Open, a custom outcome is a button with its label ("Request changes"); settled, the
card says what happened in the outcome's ``done`` words ("Changes requested by @erin"),
or with its label ("Escalate to audit, chosen by @frank"), never the outcome's id.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.render import Renderer
from bot.settings import BUNDLED_TEMPLATES
from workflows.language.steps.approve import OutcomeButton

OUTCOMES = [
    OutcomeButton(id="changes", label="Request changes", done="Changes requested").model_dump(),
    OutcomeButton(id="escalate", label="Escalate to audit", style="danger").model_dump(),
]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(BUNDLED_TEMPLATES)


def card(renderer: Renderer, status: str, reason: str | None = None) -> tuple[str, str]:
    gate: dict[str, Any] = {
        "id": "g1",
        "status": status,
        "approvers": ["U0ERIN001"],
        "min_approvals": 1,
        "decided_by": None if status == "open" else "U0ERIN001",
        "decided_at": None if status == "open" else "2026-12-04 09:00 UTC",
        "reason": reason,
        "level": 0,
    }
    rendered = renderer.render(
        "approval_card",
        {
            "gate": gate,
            "title": "Campaign report",
            "summary": "",
            "fields": {},
            "outcomes": OUTCOMES,
            "note": None,
            "run": {"id": "r1", "workflow": "campaign-report", "requester": "U0ALICE01"},
        },
    )
    return rendered.text, str(rendered.blocks)


def test_open_buttons_carry_the_labels(renderer: Renderer) -> None:
    _, blocks = card(renderer, "open")
    assert "'text': 'Request changes'" in blocks and "'text': 'Escalate to audit'" in blocks


def test_a_settled_custom_outcome_reads_in_its_done_words(renderer: Renderer) -> None:
    text, blocks = card(renderer, "changes", reason="numbers for March are off")
    assert text == "Campaign report: Changes requested"
    assert "*Changes requested* by <@U0ERIN001> at 2026-12-04 09:00 UTC" in blocks
    assert ": numbers for March are off" in blocks
    assert "Changes*" not in blocks and "*Changes by" not in blocks


def test_without_done_words_the_label_is_chosen(renderer: Renderer) -> None:
    text, blocks = card(renderer, "escalate")
    assert text == "Campaign report: Escalate to audit"
    assert "*Escalate to audit*, chosen by <@U0ERIN001>" in blocks
    assert "*Escalate*" not in blocks


def test_approve_and_reject_keep_their_words(renderer: Renderer) -> None:
    text, blocks = card(renderer, "approved")
    assert text == "Campaign report: approved"
    assert "*Approved* by <@U0ERIN001>" in blocks
