"""Block Kit validation against Slack's published limits.

Slack rejects a message or view whose blocks break a limit with
``invalid_blocks`` (messages) or ``invalid_arguments`` (views) and lists each
problem as ``"<reason> [json-pointer:/blocks/0/text/text]"``. This module
produces the same list: first slack_sdk's own block models (where they raise),
then the structural and length limits Slack documents, which the models do not
all check (element text, values, counts per block, ids).
"""

from __future__ import annotations

from typing import Any, Literal

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

Surface = Literal["message", "modal", "home"]

MAX_BLOCKS: dict[str, int] = {"message": 50, "modal": 100, "home": 100}
MESSAGE_TEXT_MAX = 40_000

BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
        "table",
        "context_actions",
    }
)
SELECTS_WITH_OPTIONS = frozenset(
    {"static_select", "multi_static_select", "radio_buttons", "checkboxes", "overflow"}
)


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, reason: str, pointer: str) -> None:
        self.errors.append(f"{reason} [json-pointer:{pointer}]")

    # -------------------------------------------------------------- primitives

    def string(self, value: Any, pointer: str, max_len: int, required: bool = True) -> None:
        if value is None:
            if required:
                self.add("missing required field", pointer)
            return
        if not isinstance(value, str):
            self.add("expected string", pointer)
        elif len(value) > max_len:
            self.add(f"must be less than {max_len + 1} characters", pointer)
        elif required and not value:
            self.add("must be more than 0 characters", pointer)

    def text(
        self,
        obj: Any,
        pointer: str,
        max_len: int,
        plain_only: bool = False,
        required: bool = True,
    ) -> None:
        if obj is None:
            if required:
                self.add("missing required field", pointer)
            return
        if not isinstance(obj, dict):
            self.add("expected object", pointer)
            return
        kind = obj.get("type")
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if kind not in allowed:
            self.add(f"must be one of {list(allowed)}", f"{pointer}/type")
        self.string(obj.get("text"), f"{pointer}/text", max_len)

    def option(self, obj: Any, pointer: str, text_max: int = 75) -> None:
        if not isinstance(obj, dict):
            self.add("expected object", pointer)
            return
        self.text(obj.get("text"), f"{pointer}/text", text_max)
        self.string(obj.get("value"), f"{pointer}/value", 150)

    def confirm(self, obj: Any, pointer: str) -> None:
        if obj is None:
            return
        if not isinstance(obj, dict):
            self.add("expected object", pointer)
            return
        self.text(obj.get("title"), f"{pointer}/title", 100, plain_only=True)
        self.text(obj.get("text"), f"{pointer}/text", 300)
        self.text(obj.get("confirm"), f"{pointer}/confirm", 30, plain_only=True)
        self.text(obj.get("deny"), f"{pointer}/deny", 30, plain_only=True)

    # -------------------------------------------------------------- elements

    def element(self, el: Any, pointer: str) -> None:
        if not isinstance(el, dict):
            self.add("expected object", pointer)
            return
        kind = el.get("type")
        if not isinstance(kind, str):
            self.add("missing required field: type", pointer)
            return
        if "action_id" in el:
            self.string(el["action_id"], f"{pointer}/action_id", 255)
        self.confirm(el.get("confirm"), f"{pointer}/confirm")
        if kind == "button":
            self.text(el.get("text"), f"{pointer}/text", 75, plain_only=True)
            self.string(el.get("value"), f"{pointer}/value", 2000, required=False)
            self.string(el.get("url"), f"{pointer}/url", 3000, required=False)
            style = el.get("style")
            if style is not None and style not in ("primary", "danger"):
                self.add("must be one of ['primary', 'danger']", f"{pointer}/style")
        elif kind in SELECTS_WITH_OPTIONS:
            options = el.get("options")
            if "option_groups" not in el:
                limit = (
                    5
                    if kind == "overflow"
                    else (10 if kind in ("radio_buttons", "checkboxes") else 100)
                )
                if not isinstance(options, list) or not options:
                    self.add("missing required field: options", pointer)
                elif len(options) > limit:
                    self.add(f"no more than {limit} items allowed", f"{pointer}/options")
                else:
                    for i, opt in enumerate(options):
                        self.option(opt, f"{pointer}/options/{i}")
        elif kind == "image":
            self.string(el.get("alt_text"), f"{pointer}/alt_text", 2000)
        elif kind in ("plain_text", "mrkdwn"):
            self.string(el.get("text"), f"{pointer}/text", 3000)
        if "placeholder" in el:
            self.text(el["placeholder"], f"{pointer}/placeholder", 150, plain_only=True)

    # -------------------------------------------------------------- blocks

    def block(self, block: Any, pointer: str, seen_ids: set[str]) -> None:
        if not isinstance(block, dict):
            self.add("expected object", pointer)
            return
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            self.add("failed to match all allowed schemas", pointer)
            return
        block_id = block.get("block_id")
        if block_id is not None:
            self.string(block_id, f"{pointer}/block_id", 255)
            if isinstance(block_id, str):
                if block_id in seen_ids:
                    self.add("duplicate block_id", f"{pointer}/block_id")
                seen_ids.add(block_id)
        if kind == "section":
            if block.get("text") is None and not block.get("fields"):
                self.add("must provide either text or fields", pointer)
            self.text(block.get("text"), f"{pointer}/text", 3000, required=False)
            fields = block.get("fields")
            if fields is not None:
                if not isinstance(fields, list):
                    self.add("expected array", f"{pointer}/fields")
                elif len(fields) > 10:
                    self.add("no more than 10 items allowed", f"{pointer}/fields")
                else:
                    for i, f in enumerate(fields):
                        self.text(f, f"{pointer}/fields/{i}", 2000)
            if "accessory" in block:
                self.element(block["accessory"], f"{pointer}/accessory")
        elif kind == "header":
            self.text(block.get("text"), f"{pointer}/text", 150, plain_only=True)
        elif kind in ("actions", "context"):
            limit = 25 if kind == "actions" else 10
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                self.add("missing required field: elements", pointer)
            elif len(elements) > limit:
                self.add(f"no more than {limit} items allowed", f"{pointer}/elements")
            else:
                for i, el in enumerate(elements):
                    self.element(el, f"{pointer}/elements/{i}")
        elif kind == "image":
            self.string(
                block.get("image_url"),
                f"{pointer}/image_url",
                3000,
                required="slack_file" not in block,
            )
            self.string(block.get("alt_text"), f"{pointer}/alt_text", 2000)
        elif kind == "input":
            self.text(block.get("label"), f"{pointer}/label", 2000, plain_only=True)
            self.text(block.get("hint"), f"{pointer}/hint", 2000, plain_only=True, required=False)
            if "element" not in block:
                self.add("missing required field: element", pointer)
            else:
                self.element(block["element"], f"{pointer}/element")
        elif kind == "markdown":
            self.string(block.get("text"), f"{pointer}/text", 12_000)


def _sdk_errors(blocks: list[Any], prefix: str) -> list[str]:
    """Errors slack_sdk's block models raise (they know per-type rules we don't repeat)."""
    out: list[str] = []
    for i, raw in enumerate(blocks):
        if not isinstance(raw, dict):
            continue
        try:
            model = Block.parse(raw)
            if model is not None:
                model.validate_json()
        except (SlackObjectFormationError, KeyError, TypeError, ValueError, AttributeError) as exc:
            out.append(f"{exc} [json-pointer:{prefix}/{i}]")
    return out


def validate_blocks(
    blocks: Any, surface: Surface = "message", prefix: str = "/blocks"
) -> list[str]:
    """Every problem Slack would report for ``blocks`` on ``surface``; [] when valid."""
    if not isinstance(blocks, list):
        return [f"expected array [json-pointer:{prefix}]"]
    checker = _Checker()
    limit = MAX_BLOCKS[surface]
    if len(blocks) > limit:
        checker.add(f"no more than {limit} items allowed", prefix)
        return checker.errors
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        checker.block(block, f"{prefix}/{i}", seen)
    # Our checks first: they carry Slack's wording; the SDK adds what we missed.
    sdk = [
        e
        for e in _sdk_errors(blocks, prefix)
        if e.rsplit("[", 1)[-1] not in "".join(checker.errors)
    ]
    return checker.errors + sdk


def validate_view(view: Any, surface: Surface) -> list[str]:
    """Problems with a view payload for views.open/push/update (modal) or views.publish (home)."""
    if not isinstance(view, dict):
        return ["expected object [json-pointer:/view]"]
    checker = _Checker()
    expected = "home" if surface == "home" else "modal"
    if view.get("type") != expected:
        checker.add(f"must be '{expected}'", "/view/type")
    if surface == "modal":
        checker.text(view.get("title"), "/view/title", 24, plain_only=True)
        checker.text(view.get("submit"), "/view/submit", 24, plain_only=True, required=False)
        checker.text(view.get("close"), "/view/close", 24, plain_only=True, required=False)
        has_input = any(
            isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or []
        )
        if has_input and view.get("submit") is None:
            checker.add("submit is required when an input block is present", "/view/submit")
    checker.string(view.get("callback_id"), "/view/callback_id", 255, required=False)
    checker.string(view.get("private_metadata"), "/view/private_metadata", 3000, required=False)
    checker.string(view.get("external_id"), "/view/external_id", 255, required=False)
    if "blocks" not in view:
        checker.add("missing required field: blocks", "/view")
        return checker.errors
    return checker.errors + validate_blocks(view["blocks"], surface, prefix="/view/blocks")
