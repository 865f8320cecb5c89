"""What a ``call`` step's Python function gets, may raise, and where it is loaded from.

A function whose first parameter is named ``ctx`` is called ``function(ctx)`` with a
:class:`CallContext`; any other function is called with its arguments as keywords, as
before. It returns a mapping (the step's output) and may be a coroutine function::

    # workflows/steps/reports.py, beside the workflow files
    from workflows.steps.calls import CallContext, CallFailed

    async def open_accounts(ctx: CallContext) -> dict[str, object]:
        rows = await ctx.connections.sql("warehouse").query("select …", {"id": ctx.inputs["id"]})
        if not rows:
            raise CallFailed("no such account")              # the step fails, no retry
        await ctx.connections.http("crm").request(
            "POST", "/notes", json={...}, idempotency_key=ctx.idempotency_key)
        return {"count": len(rows)}

Errors: :class:`CallFailed` (``retryable=True`` for "try again later"); a connector's
``ConnectorError`` keeps its own ``retryable``; anything else fails the step, not
retried, with its type and message (never a traceback) in the thread.

``function: steps.reports:open_accounts`` names ``steps/reports.py`` in the workflows
folder. Such modules are loaded by file path, not by adding the folder to ``sys.path``:
a user module named like an installed one (``steps/json.py``) must not shadow it for the
whole process, and two workflow folders in one process (tests, a reload) must not share
modules. Each file is loaded once per process and cached under a private module name.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

from connectors.ai.base import AIProvider
from connectors.email import EmailConnector
from connectors.errors import ConnectorError
from connectors.github import GithubConnector
from connectors.http import HttpConnector
from connectors.jira import JiraConnector
from connectors.registry import ConnectorRegistry
from connectors.sql import SqlConnector
from connectors.webhook_out import WebhookOutConnector

__all__ = ["CallContext", "CallFailed", "Connections", "load_function"]

STEPS_PACKAGE = "steps"
"""``function: steps.<module>:<name>`` loads ``<workflows folder>/steps/<module>.py``."""


class CallFailed(Exception):
    """Raised by a ``call`` function: the step fails with this message, retried if ``retryable``
    (under the step's ``retry`` policy)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class Connections:
    """The named connections, typed: the very clients the built-in steps use."""

    def __init__(self, registry: ConnectorRegistry | None) -> None:
        self._registry = registry

    @property
    def names(self) -> list[str]:
        return self._registry.names if self._registry else []

    def _need(self) -> ConnectorRegistry:
        if self._registry is None:
            raise CallFailed("no connections are configured")
        return self._registry

    def http(self, name: str) -> HttpConnector:
        return self._need().http(name)

    def sql(self, name: str) -> SqlConnector:
        return self._need().sql(name)

    def email(self, name: str) -> EmailConnector:
        return self._need().email(name)

    def jira(self, name: str) -> JiraConnector:
        return self._need().jira(name)

    def github(self, name: str) -> GithubConnector:
        return self._need().github(name)

    def webhook_out(self, name: str) -> WebhookOutConnector:
        return self._need().webhook_out(name)


@dataclass(frozen=True)
class CallContext:
    inputs: Mapping[str, Any]
    """The step's ``args``, rendered."""
    run: Mapping[str, Any]
    """The run's context as expressions see it (``input``, ``steps``, ``run``), read-only."""
    connections: Connections
    ai: AIProvider | None
    idempotency_key: str
    """``run:step``: the same on every try of this step; pass it on to outside systems."""
    run_id: str
    step_id: str
    attempt: int


def read_only(value: Any) -> Any:
    """A deep read-only view: a function must not change the run's context behind the engine."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: read_only(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(read_only(item) for item in value)
    return value


def load_function(reference: str, steps_dir: Path | None) -> Callable[..., Any]:
    """``module:function`` → the function; ``steps.<m>`` from ``steps_dir``, else importable."""
    module_name, _, attr = reference.partition(":")
    package, _, rest = module_name.partition(".")
    if package == STEPS_PACKAGE and rest and steps_dir is not None:
        module = _load_file(steps_dir, rest)
    else:
        module = importlib.import_module(module_name)
    function = getattr(module, attr)
    if not callable(function):
        raise AttributeError(f"{reference} is not a function")
    return function  # type: ignore[no-any-return]


def _load_file(steps_dir: Path, dotted: str) -> ModuleType:
    path = steps_dir.joinpath(*dotted.split(".")).with_suffix(".py").resolve()
    if not path.is_relative_to(steps_dir.resolve()) or not path.is_file():
        raise ImportError(f"no file {STEPS_PACKAGE}/{dotted.replace('.', '/')}.py")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    name = f"_switchboard_steps_{digest}"
    if (cached := sys.modules.get(name)) is not None:
        return cached
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def failure_of(exc: Exception) -> tuple[str, bool]:
    """A function's exception as (message for the thread, retryable)."""
    if isinstance(exc, CallFailed | ConnectorError):
        return str(exc) or type(exc).__name__, exc.retryable
    return f"{type(exc).__name__}: {str(exc)[:200]}", False
