"""How long a request's text may be, and how a longer one is stored.

8,000 characters: a pasted e-mail or log excerpt fits, and a request stays small where it
is stored (the request row and the run's input) and where it is sent on (AI prompts of about
2,000 tokens, thread messages). Slack allows 40,000 characters in a message; a text that
long is almost always a paste by mistake, and it would be stored twice.

``workflows/runs.start_run`` cuts every trigger's text to the limit before it is stored,
and the engine cuts a reacted message's text it reads later (``workflows/presence.py``);
``/flow`` refuses a longer text outright (``bot/request_text.py``), since someone is there
to be told.
"""

from __future__ import annotations

MAX_REQUEST_CHARS = 8_000
CUT_MARK = " […]"


def too_long(text: str) -> bool:
    return len(text) > MAX_REQUEST_CHARS


def capped(text: str) -> str:
    """The text as stored: cut at the limit, marked as cut."""
    if not too_long(text):
        return text
    return text[: MAX_REQUEST_CHARS - len(CUT_MARK)] + CUT_MARK
