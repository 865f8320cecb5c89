"""Read a YAML file a user wrote, refusing what could exhaust the process or hide a change.

Everything the product loads from users (workflow files, ``connections.yaml``)
comes through ``read_yaml``. Before any Python object is built it refuses:

- files over ``MAX_BYTES`` (256 KiB): the pure-Python parser costs about a
  second per megabyte and ``serve`` loads every file at start-up; the largest
  bundled workflow is under 4 KiB, so the cap is far above any real definition;
- aliases and anchors (``&a`` / ``*a``): expanding them is how a 340-byte
  "billion laughs" file becomes gigabytes; definitions do not need them;
- nesting deeper than ``MAX_DEPTH`` (32) levels: bounds the recursion of
  composing, constructing and validating the document.

Those three are checked on the parser's event stream. While constructing it
refuses duplicate keys at every level (last-wins would let a second
``not_requester: false`` silently undo the first) and merge keys (``<<``,
whose override semantics are the same silent last-wins). Every problem is one
``YamlProblem`` with a 1-based line and a one-line message.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

MAX_BYTES = 256 * 1024
MAX_DEPTH = 32
_MERGE_TAG = "tag:yaml.org,2002:merge"
# libyaml parses about 20x faster than the pure-Python parser (a 256 KiB flow list: 0.4 s, not
# 7.6 s); both emit the same events and nodes, so the checks below do not depend on which.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Lines = dict[tuple[Any, ...], int]


class YamlProblem(Exception):
    """The file is refused; ``line`` is 1-based, ``message`` a single line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = one_line(message)


@dataclass(frozen=True)
class YamlDocument:
    data: Any
    lines: Lines
    """Path (keys and list indexes) -> 1-based line of every node."""


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def read_yaml(path: Path) -> YamlDocument:
    """Read and parse ``path``; raise YamlProblem (never anything else) if it is refused."""
    if not path.is_file():  # a FIFO or device named *.yaml would block or never end
        raise YamlProblem(1, "cannot read: not a regular file")
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_BYTES + 1)  # never read more than the cap, whatever the file is
    except OSError as exc:
        raise YamlProblem(1, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise YamlProblem(1, f"file is larger than {MAX_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlProblem(1, f"cannot read: not UTF-8 text (byte {exc.start})") from None
    return parse_yaml(text)


def parse_yaml(text: str) -> YamlDocument:
    try:
        _check_events(text)
        loader = _StrictLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = str(exc.problem or exc.context)
        if "maximum nesting depth" in problem:  # libyaml's own cap (1000) can come first
            raise YamlProblem(line, f"nested deeper than {MAX_DEPTH} levels") from None
        raise YamlProblem(line, f"bad YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(1, f"bad YAML: {exc}") from None
    return YamlDocument(data, _line_map(node))


def _check_events(text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_BaseLoader):
        line = event.start_mark.line + 1 if event.start_mark is not None else 1
        if isinstance(event, yaml.AliasEvent):
            raise YamlProblem(line, f"aliases and anchors are not allowed (*{event.anchor})")
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            raise YamlProblem(line, f"aliases and anchors are not allowed (&{event.anchor})")
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlProblem(line, f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


class _StrictLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # e.g. a timestamp like 2024-02-30
            raise ConstructorError(
                None, None, f"bad value {node.value!r}: {exc}", node.start_mark
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _value in node.value:
                line = key_node.start_mark.line + 1
                if key_node.tag == _MERGE_TAG:
                    raise YamlProblem(line, "merge keys (<<) are not allowed")
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, Hashable) or _unhashable(key):
                    raise YamlProblem(line, "a key must be a plain value")
                if key in first_line:
                    raise YamlProblem(
                        line, f"duplicate key {key!r} (first at line {first_line[key]})"
                    )
                first_line[key] = line
        mapping: dict[Any, Any] = super().construct_mapping(node, deep)
        return mapping


def _unhashable(key: Any) -> bool:
    try:
        hash(key)
    except TypeError:
        return True
    return False


def _line_map(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> Lines:
    lines: Lines = {}
    if node is None:
        return lines
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = path + (key_node.value,)
            lines.update(_line_map(value_node, key))
            lines[key] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_line_map(item, path + (index,)))
    return lines
