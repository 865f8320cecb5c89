"""The one place Block Kit is made: Jinja2 templates in ``templates/`` rendered and validated.

Handlers and the engine hand over a template name and data; they never build
Block Kit dicts. Every ``{{ value }}`` is escaped twice on the way out: for
Slack (``& < >``, so request text cannot ping ``<!channel>`` or forge links) and
for JSON (so quotes in request text cannot break the template). Values that
are meant as Slack markup come from the ``mention``/``channel``/``link`` filters,
which accept only a well-formed id or URL (anything else is escaped text, so a
value like ``U1> <!here`` cannot smuggle a ping). The ``mentions`` filter keeps
our own summaries' ``<@U…>``/``<#C…>`` working but escapes every mention the
requester typed (``request_mentions``, put in the data by ``workflows/outbox.py``).

Every rendered text and block is scrubbed of secrets (``connectors/secrets.py``)
before it leaves, so no template, wherever its data came from, can post one.

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

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from connectors.secrets import Scrubber
from workflows.outbox import REQUEST_MENTIONS

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000
EPHEMERAL = "flow_ack"
"""The one-line ephemeral answer of an ack; ``Renderer.ephemeral`` serves it precompiled."""
EPHEMERAL_CLIP = 2900
"""What ``flow_ack.json.j2`` clips its text to (``tests/bot/test_ack_work.py`` compares)."""
SECTION_TEXT_LIMIT = 3000
_SLOT = "\x00slot\x00"


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
    def __init__(self, templates_dir: Path, scrubber: Scrubber | None = None) -> None:
        self.templates_dir = templates_dir
        # Shapes and every secret the process announced; the chat port scrubs again.
        self._scrubber = scrubber or Scrubber()
        self._env = SandboxedEnvironment(
            loader=FileSystemLoader(str(templates_dir)),
            undefined=StrictUndefined,
            finalize=_finalize,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            # Templates ship with the code: compiled once, never stat()ed again per render.
            auto_reload=False,
        )
        self._ephemeral: Rendered | None = None
        self._env.filters.update(
            mention=_mention,
            channel=_channel,
            link=_link,
            clip=_clip,
            counted=_counted,
            mentions=_mentions,
            tojson=lambda value: RawJSON(json.dumps(value, default=str)),
            code=lambda value: SlackMarkup("`" + slack_escape(str(value)).replace("`", "'") + "`"),
        )

    def warm_up(self) -> None:
        """Compile every template now, so the first request does not pay for it."""
        for name in self._env.list_templates(filter_func=lambda n: n.endswith(".json.j2")):
            self._env.get_template(name)

    def ephemeral(self, text: str) -> Rendered:
        """``render("flow_ack", {"text": text})`` without rendering or validating each time.

        The template is rendered and validated once with a placeholder; an answer is that
        result with the text (clipped, escaped and scrubbed as the template's render would)
        in the placeholder's place. A section's validity depends only on its text's length,
        so only a text over Slack's section limit is validated again (and refused).
        """
        if self._ephemeral is None:
            self._ephemeral = self.render(EPHEMERAL, {"text": _SLOT})
        value = self._scrubber.text(slack_escape(_clip(text, EPHEMERAL_CLIP)))
        rendered = Rendered(
            text=self._ephemeral.text.replace(_SLOT, value),
            blocks=_filled(self._ephemeral.blocks, value),
        )
        if len(value) > SECTION_TEXT_LIMIT:
            validate(rendered, max_blocks=MAX_MESSAGE_BLOCKS, origin=EPHEMERAL)
        return rendered

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
        return dict(self._scrubber.value(view))

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
            text=self._scrubber.text(str(payload.get("text", ""))),
            blocks=list(self._scrubber.value(list(payload.get("blocks", [])))),
        )
        validate(rendered, max_blocks=max_blocks, origin=template)
        return rendered


def _filled(value: Any, text: str) -> Any:
    if isinstance(value, str):
        return value.replace(_SLOT, text)
    if isinstance(value, dict):
        return {key: _filled(item, text) for key, item in value.items()}
    if isinstance(value, list):
        return [_filled(item, text) for item in value]
    return value


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
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
_URL = re.compile(r"(?:https?://|mailto:)[^\s<>|]+")


def _mention(user: Any) -> str:
    if not user:
        return "someone"
    text = str(user)
    return SlackMarkup(f"<@{text}>") if _USER_ID.fullmatch(text) else text


def _channel(channel: Any) -> str:
    if not channel:
        return ""
    text = str(channel)
    return SlackMarkup(f"<#{text}>") if _CHANNEL_ID.fullmatch(text) else text


def _link(url: Any, label: Any = None) -> str:
    text = str(url)
    if not _URL.fullmatch(text):
        return str(label) if label else text  # not a URL we can mark up: plain, escaped text
    return SlackMarkup(f"<{text}|{slack_escape(str(label))}>" if label else f"<{text}>")


@pass_context
def _mentions(context: Context, value: Any) -> SlackMarkup:
    """Escape text but keep the bot's own user and channel mentions (``<@U…>``, ``<#C…>``).

    Our summaries mention people ("approved by <@U…>") and may quote request text in the
    same string. A mention the requester typed (``request_mentions``) stays escaped, so
    echoing their words never pings anyone; special mentions (``<!here>``) and links are
    never kept. The requester may always be mentioned: they would hear of their run anyway.
    """
    typed = set(context.get(REQUEST_MENTIONS) or ())
    run = context.get("run")
    requester = run.get("requester") if isinstance(run, dict) else None
    escaped = slack_escape("" if value is None else str(value))

    def keep(match: re.Match[str]) -> str:
        target = match.group(1)
        if target in typed and target != f"@{requester}":
            return match.group(0)
        return f"<{target}{match.group(2) or ''}>"

    return SlackMarkup(_MENTION.sub(keep, escaped))


def _counted(value: Any, word: str, plural: str | None = None) -> str:
    """``{{ n | counted("request") }}``: "1 request", "3 requests" (``plural`` if irregular)."""
    return f"{value} {word}" if str(value) == "1" else f"{value} {plural or word + 's'}"


def _clip(value: Any, limit: int = 2900) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
