"""Author-written regular expressions, compiled with RE2 so matching is linear in the text.

A message trigger's ``match`` runs on every message in a watched channel, on the
ack path; an ``extract`` field's ``pattern`` runs on request text in the offline
extractor. Python's ``re`` backtracks: ``(a+)+$`` against 30 ``a``s and a ``!``
takes minutes, holding the GIL, so the whole process stalls. RE2 never backtracks;
the price is that backreferences and lookarounds do not exist, and ``check`` says so
(``workflows/language/triggers.py``, ``workflows/language/steps/ai.py``).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the error is reported to the author; RE2's own log is noise

_UNSUPPORTED = (
    (re.compile(r"\\[1-9]|\(\?P=|\\g<"), "backreferences"),
    (re.compile(r"\(\?<[=!]"), "lookbehinds"),
    (re.compile(r"\(\?[=!]"), "lookaheads"),
)


@functools.lru_cache(maxsize=1024)
def compile_linear(pattern: str) -> Any:
    """The compiled RE2 pattern (``.search(text)``); ValueError with the reason if it cannot be."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raise ValueError(_reason(pattern, exc)) from None


def _reason(pattern: str, exc: Exception) -> str:
    for construct, what in _UNSUPPORTED:
        if construct.search(pattern):
            return (
                f"bad regular expression: {what} are not supported; patterns are "
                "linear-time (RE2 syntax)"
            )
    detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
    return f"bad regular expression: {detail} (patterns are linear-time RE2 syntax)"
