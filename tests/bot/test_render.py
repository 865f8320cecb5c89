"""The renderer's escaping: request text can't ping or break a card; our mentions still work."""

from __future__ import annotations

import pytest

from bot.render import Renderer, RenderError
from bot.settings import BUNDLED_TEMPLATES


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
