"""A small, documented subset of JSONPath for picking values out of JSON responses.

Supported (and nothing else, so a workflow author can read every path at a glance)::

    $                    the whole document (also the empty path)
    data.items           object keys, dot-separated; a leading "$." is optional
    items[0]  items[-1]  list index, negative counts from the end
    items[*].id          every element; what follows applies to each and the results form a list
    ["odd key"].x        a key with dots, spaces or brackets, in double quotes

A path that does not match raises :class:`PathNotFound`; the HTTP connector turns that into
``ConnectorBadResponse`` because the remote side did not answer in the agreed shape.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["PathNotFound", "compile_path", "select"]

_TOKEN = re.compile(
    r"""
      \.?(?P<key>[A-Za-z_][\w-]*)      # .key or key
    | \[(?P<index>-?\d+)\]             # [3]
    | \[(?P<star>\*)\]                 # [*]
    | \.?\["(?P<quoted>[^"]*)"\]       # ["odd key"]
    """,
    re.VERBOSE,
)

_STAR = object()
Step = str | int | object


class PathNotFound(LookupError):
    """The document has no value at the path (or the path is not in the subset)."""


def compile_path(path: str) -> tuple[Step, ...]:
    """Parse ``path`` into steps; raise ``PathNotFound`` for syntax outside the subset."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[Step] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise PathNotFound(f"unsupported path syntax at {text[pos:]!r} in {path!r}")
        if match["key"] is not None:
            steps.append(match["key"])
        elif match["index"] is not None:
            steps.append(int(match["index"]))
        elif match["star"] is not None:
            steps.append(_STAR)
        else:
            steps.append(match["quoted"])
        pos = match.end()
    return tuple(steps)


def select(document: Any, path: str) -> Any:
    """Return the value of ``document`` at ``path`` (a list when the path has ``[*]``)."""
    return _walk(document, compile_path(path), path)


def _walk(node: Any, steps: tuple[Step, ...], path: str) -> Any:
    for i, step in enumerate(steps):
        if step is _STAR:
            if not isinstance(node, list):
                raise PathNotFound(f"{path!r}: [*] applied to a non-list")
            return [_walk(item, steps[i + 1 :], path) for item in node]
        if isinstance(step, int) and not isinstance(step, bool):
            if not isinstance(node, list) or not -len(node) <= step < len(node):
                raise PathNotFound(f"{path!r}: no index {step}")
            node = node[step]
        elif isinstance(step, str):
            if not isinstance(node, dict) or step not in node:
                raise PathNotFound(f"{path!r}: no key {step!r}")
            node = node[step]
    return node
