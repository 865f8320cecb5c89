"""Named connections to business systems, declared in ``connections.yaml`` beside the workflows.

The file names systems and the environment variables holding their secrets;
the secrets themselves only ever come from the environment. A problem stops
start-up with one line naming the connection and field.

``optional: true`` on a connection (the bundled examples use it) relaxes one
thing: when an environment variable it names is unset, the connection is left
out with a warning naming the variable instead of stopping start-up, and the
workflows that use it are skipped (``switchboard demo`` sets the variables for
its stand-in systems). A malformed optional connection still stops start-up.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.settings import ConfigurationError
from connectors.base import Hooks
from connectors.config import parse_connections
from connectors.errors import ConnectorError
from connectors.registry import ConnectorRegistry
from workflows.yaml_safe import YamlProblem, read_yaml

log = logging.getLogger(__name__)

FILENAMES = ("connections.yaml", "connections.yml")
OPTIONAL_KEY = "optional"


def connections_file(workflows_dir: Path) -> Path | None:
    return next((workflows_dir / n for n in FILENAMES if (workflows_dir / n).is_file()), None)


def read_connections(workflows_dir: Path) -> dict[str, Any]:
    path = connections_file(workflows_dir)
    if path is None:
        return {}
    try:
        # The same limits as workflow files: no aliases, bounded size and depth, no duplicate keys.
        raw = read_yaml(path).data or {}
    except YamlProblem as problem:
        raise ConfigurationError(
            f"configuration error: {path}:{problem.line}: {problem.message}"
        ) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("connections", {}), dict):
        raise ConfigurationError(
            f"configuration error: {path}: expected `connections: {{name: ...}}`"
        )
    return dict(raw.get("connections", {}))


def build_registry(
    workflows_dir: Path, env: Mapping[str, str] | None = None, *, hooks: Hooks | None = None
) -> ConnectorRegistry:
    env = env or os.environ
    configs: dict[str, Any] = {}
    try:
        for name, raw in read_connections(workflows_dir).items():
            optional = isinstance(raw, dict) and raw.get(OPTIONAL_KEY) is True
            config = _without_optional(raw)
            unset = _unset_variables(config, env) if optional else []
            if unset:
                parse_connections({name: config})  # malformed is an error even when optional
                log.warning(
                    "connection %s left out: %s not set (optional; workflows using it are skipped)",
                    name,
                    ", ".join(unset),
                )
                continue
            configs[name] = config
        return ConnectorRegistry.build(configs, env, hooks=hooks)
    except ConnectorError as exc:
        raise ConfigurationError(f"configuration error: connection {exc}") from None


def _without_optional(raw: Any) -> Any:
    if isinstance(raw, dict) and isinstance(raw.get(OPTIONAL_KEY), bool):
        return {key: value for key, value in raw.items() if key != OPTIONAL_KEY}
    return raw


def _unset_variables(config: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """The environment variables a connection names (``*_env``, secret headers) that are unset."""
    names = [v for k, v in config.items() if k.endswith("_env") and isinstance(v, str)]
    headers = config.get("secret_headers")
    if isinstance(headers, dict):
        names += [v for v in headers.values() if isinstance(v, str)]
    return [name for name in names if not env.get(name)]
