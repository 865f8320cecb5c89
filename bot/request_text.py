"""How long a request's text may be: ``/flow`` refuses a longer one in one line.

The limit and how other triggers' texts are cut live in ``workflows/request_text.py``
(applied to every trigger by ``start_run``).
"""

from __future__ import annotations

from workflows.request_text import CUT_MARK, MAX_REQUEST_CHARS, capped, too_long

__all__ = ["CUT_MARK", "MAX_REQUEST_CHARS", "capped", "refusal", "too_long"]


def refusal(text: str) -> str:
    return (
        f"That request is {len(text):,} characters; the limit is {MAX_REQUEST_CHARS:,}. "
        "Shorten it or link to the full text."
    )
