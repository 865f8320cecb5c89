"""Named connections to business systems, declared in ``connections.yaml`` beside the workflows.

The file names systems and the environment variables holding their secrets;
the secrets themselves only ever come from the environment. A problem stops
start-up with one line naming the connection and field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from bot.settings import ConfigurationError
from connectors.errors import ConnectorError
from connectors.registry import ConnectorRegistry

FILENAMES = ("connections.yaml", "connections.yml")


def connections_file(workflows_dir: Path) -> Path | None:
    return next((workflows_dir / n for n in FILENAMES if (workflows_dir / n).is_file()), None)


def read_connections(workflows_dir: Path) -> dict[str, Any]:
    path = connections_file(workflows_dir)
    if path is None:
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"configuration error: {path}: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("connections", {}), dict):
        raise ConfigurationError(
            f"configuration error: {path}: expected `connections: {{name: ...}}`"
        )
    return dict(raw.get("connections", {}))


def build_registry(workflows_dir: Path, env: Mapping[str, str] | None = None) -> ConnectorRegistry:
    try:
        return ConnectorRegistry.build(read_connections(workflows_dir), env or os.environ)
    except ConnectorError as exc:
        raise ConfigurationError(f"configuration error: connection {exc}") from None
