"""The renderer's escaping: request text can't ping or break a card; our mentions still work."""

from __future__ import annotations

import pytest

from bot.render import Renderer, RenderError, slack_escape
from bot.settings import BUNDLED_TEMPLATES
from workflows.outbox import REQUEST_MENTIONS


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(BUNDLED_TEMPLATES)


def note(renderer: Renderer, summary: str) -> str:
    rendered = renderer.render(
        "step_result",
        {
            "step": {"id": "s", "kind": "set"},
            "summary": summary,
            "run": {"id": "r1"},
            "audit": {"attempt": 1, "ms": 1.0, "output": "ab" * 32},
        },
    )
    return str(rendered.blocks[0]["text"]["text"])


def test_summaries_keep_user_and_channel_mentions(renderer: Renderer) -> None:
    text = note(renderer, "waiting for approval in <#C0123ABC> from <@U0DANA01>")
    assert "<#C0123ABC>" in text and "<@U0DANA01>" in text


@pytest.mark.parametrize(
    "hostile",
    [
        "<!channel> pay now",
        "<!here|here>",
        "<https://evil.example|click>",
        'quote " and \\ slash',
        "{{ 7*7 }}",
        "a & b < c > d",
    ],
)
def test_hostile_text_is_shown_not_obeyed(renderer: Renderer, hostile: str) -> None:
    text = note(renderer, hostile)
    assert "<!" not in text and "<http" not in text
    assert "{{ 7*7 }}" in text or "7*7" not in hostile


def test_an_unknown_template_is_a_render_error(renderer: Renderer) -> None:
    with pytest.raises(RenderError):
        renderer.render("no_such_template", {})


def test_mentions_the_requester_typed_are_escaped_ours_kept(renderer: Renderer) -> None:
    rendered = renderer.render(
        "step_result",
        {
            "step": {"id": "s", "kind": "approve"},
            "summary": "approved by <@U0DANA01>: ask <@U0EVE002> in <#C0SALES1>, cc <@U0REQ001>",
            "run": {"id": "r1", "requester": "U0REQ001"},
            "audit": {"attempt": 1, "ms": 1.0, "output": "ab" * 32},
            REQUEST_MENTIONS: ["@U0EVE002", "#C0SALES1", "@U0REQ001"],
        },
    )
    text = str(rendered.blocks[0]["text"]["text"])
    assert "approved by <@U0DANA01>" in text, "our own mention still pings"
    assert "&lt;@U0EVE002&gt;" in text and "&lt;#C0SALES1&gt;" in text
    assert "<@U0REQ001>" in text, "the requester may always be mentioned"


@pytest.mark.parametrize("smuggled", ["U1> <!here", "U0BOB|<!channel>", "<!everyone>"])
def test_mention_filters_take_only_ids(renderer: Renderer, smuggled: str) -> None:
    rendered = renderer.render(
        "access_granted",
        {
            "data": {
                "system": "erp",
                "name": "Bob",
                "grant": "read",
                "approved_by": smuggled,
                "reason": "r",
                "email": "b@example.com",
            },
            "run": {"id": "r1"},
        },
    )
    section = str(rendered.blocks[0]["text"]["text"])
    assert "<!" not in section and "<@" not in section
    assert f"approved by {slack_escape(smuggled)}." in section, "shown as text"


def test_rendered_messages_are_scrubbed(renderer: Renderer) -> None:
    aws = "AKIAIOSFODNN7EXAMPLE"
    rendered = renderer.render("message", {"text": f"key {aws} for PO-7781"})
    assert aws not in rendered.text and aws not in str(rendered.blocks)
    assert "PO-7781" in rendered.text
