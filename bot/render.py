"""The one place Block Kit is made: Jinja2 templates in ``templates/`` rendered and validated.

Handlers and the engine hand over a template name and data; they never build
Block Kit dicts. Every ``{{ value }}`` is escaped twice on the way out: for
Slack (``& < >``, so request text cannot ping ``<!channel>`` or forge links) and
for JSON (so quotes in request text cannot break the template). Values that
are meant as Slack markup come from the ``mention``/``channel``/``link`` filters.

The rendered message is checked against Slack's limits with slack_sdk's block
models plus the rules they do not enforce (50 blocks per message, 100 per view,
text lengths), so a template that would be refused by Slack fails here, in
tests, not in production.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000


class RenderError(Exception):
    """A template failed to render or produced something Slack would refuse."""


class SlackMarkup(str):
    """Text that is already Slack markup (a mention, a link): not escaped again."""

    __slots__ = ()


class RawJSON(str):
    """A JSON fragment produced by the ``tojson`` filter: inserted as is."""

    __slots__ = ()


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _finalize(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, RawJSON):
        return str(value)
    text = str(value) if isinstance(value, SlackMarkup) else slack_escape(str(value))
    return json.dumps(text)[1:-1]


@dataclass(frozen=True)
class Rendered:
    text: str
    blocks: list[dict[str, Any]]

    def as_view(self) -> dict[str, Any]:
        return {"type": "home", "blocks": self.blocks}


class Renderer:
    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = templates_dir
        self._env = SandboxedEnvironment(
            loader=FileSystemLoader(str(templates_dir)),
            undefined=StrictUndefined,
            finalize=_finalize,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters.update(
            mention=lambda user: SlackMarkup(f"<@{user}>") if user else "someone",
            channel=lambda channel: SlackMarkup(f"<#{channel}>") if channel else "",
            link=lambda url, label=None: SlackMarkup(
                f"<{url}|{slack_escape(str(label))}>" if label else f"<{url}>"
            ),
            clip=_clip,
            mentions=_mentions,
            tojson=lambda value: RawJSON(json.dumps(value, default=str)),
            code=lambda value: SlackMarkup("`" + slack_escape(str(value)).replace("`", "'") + "`"),
        )

    def warm_up(self) -> None:
        """Compile every template now, so the first request does not pay for it."""
        for name in self._env.list_templates(filter_func=lambda n: n.endswith(".json.j2")):
            self._env.get_template(name)

    def render_view(self, template: str, data: dict[str, Any]) -> dict[str, Any]:
        """A modal or Home view: the template renders the whole view object."""
        try:
            source = self._env.get_template(f"{template}.json.j2").render(**data)
            view = json.loads(source)
        except (TemplateError, json.JSONDecodeError) as exc:
            raise RenderError(f"template {template}: {exc}") from None
        validate(
            Rendered(text="", blocks=list(view.get("blocks", []))),
            max_blocks=MAX_VIEW_BLOCKS,
            origin=template,
        )
        try:
            View(**view).validate_json()
        except (SlackObjectFormationError, TypeError) as exc:
            raise RenderError(f"template {template}: {exc}") from None
        return dict(view)

    def render(
        self, template: str, data: dict[str, Any], *, max_blocks: int = MAX_MESSAGE_BLOCKS
    ) -> Rendered:
        try:
            source = self._env.get_template(f"{template}.json.j2").render(**data)
        except TemplateError as exc:
            raise RenderError(f"template {template}: {exc}") from None
        try:
            payload = json.loads(source)
        except json.JSONDecodeError as exc:
            raise RenderError(f"template {template} is not valid JSON: {exc}") from None
        rendered = Rendered(
            text=str(payload.get("text", "")), blocks=list(payload.get("blocks", []))
        )
        validate(rendered, max_blocks=max_blocks, origin=template)
        return rendered


def validate(rendered: Rendered, *, max_blocks: int, origin: str) -> None:
    if len(rendered.blocks) > max_blocks:
        raise RenderError(
            f"template {origin}: {len(rendered.blocks)} blocks (Slack allows {max_blocks})"
        )
    if not rendered.text and not rendered.blocks:
        raise RenderError(f"template {origin}: no text and no blocks")
    if len(rendered.text) > MAX_MESSAGE_TEXT:
        raise RenderError(f"template {origin}: text longer than {MAX_MESSAGE_TEXT}")
    for index, block in enumerate(rendered.blocks):
        try:
            parsed = Block.parse(block)
            if parsed is None:
                raise SlackObjectFormationError(f"unknown block type {block.get('type')!r}")
            parsed.validate_json()
        except (SlackObjectFormationError, KeyError, TypeError) as exc:
            raise RenderError(f"template {origin}: block {index}: {exc}") from None


_MENTION = re.compile(r"&lt;([@#][UWC][A-Z0-9]{2,})(\|[^&<>]{0,80})?&gt;")


def _mentions(value: Any) -> SlackMarkup:
    """Escape text but keep user and channel mentions (``<@U…>``, ``<#C…>``) working.

    Our own summaries mention people; request text could only ever mention a user or a
    channel this way (``<!channel>`` and links stay escaped), which anyone can do anyway.
    """
    escaped = slack_escape("" if value is None else str(value))
    return SlackMarkup(_MENTION.sub(lambda m: f"<{m.group(1)}{m.group(2) or ''}>", escaped))


def _clip(value: Any, limit: int = 2900) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
