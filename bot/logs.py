"""Structured logs: structlog configured once by the CLI, stdlib logging routed through it.

Every record (ours, the engine's ``log.warning(..., extra={...})``, Bolt's,
SQLAlchemy's) goes through one chain: context variables bound for the current
request or job (``run_id``, ``step_id``, ``workflow``, team/channel/user ids),
the record's ``extra`` fields, a timestamp, then ``Scrubber``, then JSON lines
(``SWITCHBOARD_LOG_FORMAT=json``, production) or a console rendering (demo).

``Scrubber`` is the last step before output, after exceptions are formatted,
so a secret in a traceback is caught too. It replaces every configured secret
(``Settings.secrets()``) and anything shaped like a credential (Slack tokens,
``sk-`` API keys, GitHub tokens, ``Bearer …``) with ``[REDACTED]``.
``scrub_tokens`` applies the shape rules alone; ``/flow`` uses it on request
text so a token someone pastes is never stored, threaded or audited.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 4
"""Shorter configured "secrets" are not scrubbed: replacing every "ab" would garble logs."""

TOKEN_PATTERN = re.compile(
    r"xox[abeoprs]-[A-Za-z0-9-]{6,}"  # Slack bot/user/refresh tokens
    r"|xoxe\.xox[bp]-[A-Za-z0-9-]{6,}"  # Slack rotating tokens
    r"|xapp-[A-Za-z0-9-]{6,}"  # Slack app-level tokens
    r"|\bsk-[A-Za-z0-9_-]{12,}"  # OpenAI-style API keys (sk-…, sk-proj-…)
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}"  # GitHub tokens
    r"|\b[Bb]earer\s+[A-Za-z0-9._~+/=-]{6,}"  # any bearer credential
)

LogFormat = Literal["json", "console"]


def scrub_tokens(text: str) -> str:
    """``text`` with every credential-shaped substring replaced by ``[REDACTED]``."""
    return TOKEN_PATTERN.sub(REDACTED, text)


class Scrubber:
    """Removes known secret values and credential-shaped strings from text and structures."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
        )

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return scrub_tokens(value)

    def value(self, value: Any) -> Any:
        """``value`` with every string inside scrubbed (dicts, lists and tuples walked)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        # Anything else is rendered with str() by the renderers: scrub that rendering.
        return self.text(str(value))

    def __call__(self, _logger: Any, _method: str, event_dict: EventDict) -> EventDict:
        """A structlog processor."""
        return {key: self.value(item) for key, item in event_dict.items()}


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


@contextlib.contextmanager
def log_context(**values: str | None) -> Iterator[None]:
    """Bind ids (those not None) to every log record of this task until the block ends."""
    bound = {key: value for key, value in values.items() if value}
    with structlog.contextvars.bound_contextvars(**bound):
        yield
