"""Structured logs: structlog configured once by the CLI, stdlib logging routed through it.

Every record (ours, the engine's ``log.warning(..., extra={...})``, Bolt's,
SQLAlchemy's) goes through one chain: context variables bound for the current
request or job (``run_id``, ``step_id``, ``workflow``, team/channel/user ids),
the record's ``extra`` fields, a timestamp, then ``Scrubber``, then JSON lines
(``SWITCHBOARD_LOG_FORMAT=json``, production) or a console rendering (demo).

``Scrubber`` (``connectors/secrets.py``, the one scrubber every layer uses) is the
last step before output, after exceptions are formatted, so a secret in a traceback
is caught too. It replaces every configured secret and anything shaped like a
credential with ``[REDACTED]``. uvicorn's own loggers are routed into the same chain
(``route_uvicorn_logs``), so its error and access lines are JSON and scrubbed too.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterable
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor

# The scrubber lives in the lowest layer so workflows and connectors use the same one;
# these names stay importable from here.
from connectors.secrets import (
    MIN_SECRET_LENGTH,
    REDACTED,
    Scrubber,
    remember_secrets,
    scrub_tokens,
)

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "UVICORN_LOGGERS",
    "LogFormat",
    "Scrubber",
    "configure_logging",
    "log_context",
    "route_uvicorn_logs",
    "scrub_tokens",
]

LogFormat = Literal["json", "console"]

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def route_uvicorn_logs() -> None:
    """Send uvicorn's loggers through the root handler (JSON, scrubbed) instead of their own.

    uvicorn's default ``log_config`` gives its loggers private handlers that print raw
    text and stop propagation, so a secret in an ASGI traceback would skip the scrubber.
    Servers are therefore started with ``log_config=None`` and this undoes what an
    earlier default-configured server in the same process set up.
    """
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True


def configure_logging(
    *,
    level: str = "INFO",
    fmt: LogFormat = "json",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Route all logging through structlog to ``stream`` (stderr). Calling again replaces it."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _merge_bound,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    output = stream or sys.stderr
    renderer: Processor = (
        structlog.processors.JSONRenderer(default=str)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=output.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # Records from stdlib loggers: their ``extra={...}`` fields become keys.
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # before scrubbing: tracebacks are text too
            Scrubber(secrets),
            renderer,
        ],
    )
    handler = logging.StreamHandler(output)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    remember_secrets(secrets)
    route_uvicorn_logs()


_BOUND: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "switchboard_log_context", default=None
)


class log_context:
    """Bind ids (those not None) to every log record of this task until the block ends.

    One context variable set per block (the ack path enters one per request), merged
    into a record only when one is built (``_merge_bound``).
    """

    __slots__ = ("_bound", "_token")

    def __init__(self, **values: str | None) -> None:
        self._bound = {key: value for key, value in values.items() if value}

    def __enter__(self) -> None:
        outer = _BOUND.get()
        self._token = _BOUND.set(outer | self._bound if outer else self._bound)

    def __exit__(self, *_exc: object) -> None:
        _BOUND.reset(self._token)


def _merge_bound(_logger: Any, _name: str, event: EventDict) -> EventDict:
    for key, value in (_BOUND.get() or {}).items():
        event.setdefault(key, value)
    return event
