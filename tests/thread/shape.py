"""Ways to look at a thread as people see it: the root, the run card, the other replies."""

from __future__ import annotations

from typing import Any

from sandbox.slack import SlackEmulator

JSON = dict[str, Any]
CARD = "Run card"


def is_card(message: JSON) -> bool:
    return str(message.get("text", "")).startswith(CARD)


def card_of(slack: SlackEmulator, channel: str, root_ts: str) -> JSON | None:
    cards = [m for m in slack.thread(channel, root_ts)[1:] if is_card(m)]
    assert len(cards) <= 1, f"more than one run card: {cards}"
    return cards[0] if cards else None


def card_lines(card: JSON) -> dict[str, str]:
    """step id -> its line on the card (result, then the audit line)."""
    lines: dict[str, str] = {}
    blocks = card.get("blocks", [])
    for block, audit in zip(blocks[1::2], blocks[2::2], strict=False):
        text = block["text"]["text"]
        step = text.split("*")[1]
        lines[step] = text + " | " + audit["elements"][0]["text"]
    return lines


def root_status(message: JSON) -> str:
    """The outcome line of a root (or of a ``received`` reply): '' while it has none."""
    sections = [b for b in message.get("blocks", []) if b["type"] == "section"]
    for block in sections:
        text = str(block["text"]["text"])
        if text.startswith(":"):
            return text
    return ""


def posts_of(slack: SlackEmulator, run_id: str) -> list[JSON]:
    """Every successful chat.postMessage whose message carries this run's outbox key."""
    found = []
    for call in slack.api_calls("chat.postMessage"):
        metadata = call.args.get("metadata")
        if call.ok and run_id in str(metadata):
            found.append(call.args)
    return found
