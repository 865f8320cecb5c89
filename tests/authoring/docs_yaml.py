"""The YAML blocks of the docs, and how each is checked (``switchboard check`` semantics).

What a block is comes from a first-line marker ``# check: <kind>``, or else from its
top-level keys:

- ``workflow``: ``name`` and ``steps`` — loads as a workflow file, no errors, no warnings;
- ``connections``: only ``connections`` — a ``connections.yaml``;
- ``connection-configs``: every value a mapping with ``type`` — the ``{name: config}``
  inside ``connections:`` (what ``ConnectorRegistry.build`` takes);
- ``triggers`` / ``steps``: only that key — validates as that part of a workflow;
- ``skip``: only with the marker, for a block that shows what is wrong on purpose.

A block that is none of these fails: give it a marker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from connectors.config import parse_connections
from connectors.errors import ConnectorConfigError
from workflows.language.steps import AnyStep
from workflows.language.triggers import Trigger
from workflows.loader import CheckContext, load_folder

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```yaml[ \t]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
_MARKER = re.compile(r"^#\s*check:\s*(?P<kind>[a-z-]+)")


@dataclass(frozen=True)
class Block:
    file: Path
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


def doc_files() -> list[Path]:
    docs = sorted((ROOT / "docs").glob("*.md"))
    return [ROOT / "README.md", *docs, ROOT / "connectors" / "README.md"]


def yaml_blocks(path: Path, text: str | None = None) -> list[Block]:
    text = path.read_text(encoding="utf-8") if text is None else text
    blocks = []
    for match in _FENCE.finditer(text):
        indent = len(match.group("indent"))
        body = "\n".join(line[indent:] for line in match.group("body").splitlines())
        blocks.append(Block(path, text.count("\n", 0, match.start()) + 2, body + "\n"))
    return blocks


def kind_of(block: Block, data: Any) -> str | None:
    marker = _MARKER.match(block.text)
    if marker:
        return marker.group("kind")
    if not isinstance(data, dict):
        return None
    keys = set(data)
    if {"name", "steps"} <= keys:
        return "workflow"
    if keys in ({"connections"}, {"triggers"}, {"steps"}):
        return keys.pop()
    if data and all(isinstance(v, dict) and "type" in v for v in data.values()):
        return "connection-configs"
    return None


def problems_of(block: Block, scratch: Path) -> list[str]:
    """What ``switchboard check`` would say about the block; empty when it is right."""
    data = yaml.safe_load(block.text)
    kind = kind_of(block, data)
    try:
        if kind == "workflow":
            return _workflow_problems(block, scratch)
        if kind == "connections":
            parse_connections(data["connections"])
        elif kind == "connection-configs":
            parse_connections(data)
        elif kind == "triggers":
            TypeAdapter(list[Trigger]).validate_python(data["triggers"])
        elif kind == "steps":
            TypeAdapter(list[AnyStep]).validate_python(data["steps"])
        elif kind != "skip":
            return ["not a workflow or a known part of one: add '# check: <kind>'"]
    except (ValidationError, ConnectorConfigError) as exc:
        return [str(exc).splitlines()[0] + " " + " ".join(str(exc).splitlines()[1:3])]
    return []


def _workflow_problems(block: Block, scratch: Path) -> list[str]:
    folder = scratch / f"block-{block.line}"
    folder.mkdir(parents=True)
    (folder / "workflow.yaml").write_text(block.text, encoding="utf-8")
    result = load_folder(folder, CheckContext(templates_dir=ROOT / "templates"))
    return [str(problem) for problem in [*result.errors, *result.warnings]]
