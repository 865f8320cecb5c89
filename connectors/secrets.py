"""The one secret scrubber: credential shapes plus the secret values configured in this process.

Every layer uses it wherever text is stored or sent: ``workflows/runs.py`` on every
start (request text and inputs, whatever the trigger), ``bot/render.py`` and the chat
port on every outgoing message, ``bot/logs.py`` on every log line (uvicorn's included),
``connectors/ai/redact.py`` before text goes to a remote model and
``connectors/errors.redact`` on what remote systems echo back. It lives in the lowest
layer so that all of them can import it.

Two sources of what to remove:

* **Shapes** (:data:`SECRET_RULES`): Slack tokens and webhook URLs, ``sk-`` keys, Stripe,
  GitHub, GitLab and Google keys, AWS access key ids and labelled secret keys, JWTs, PEM
  private keys, passwords in URLs, ``Bearer``/``Basic`` credentials and labelled
  assignments (``password=…``, ``token: …``, ``api_key=…``). Each rule errs towards
  leaving business text alone (invoice numbers, run ids, ``PO-7781``).
* **Values**: every secret the process read from its configuration. Settings, connection
  secrets and webhook secrets are announced with :func:`remember_secrets` where they are
  read, so a scrubber made anywhere knows them without plumbing.

A labelled rule replaces only the value (``password=[REDACTED]``), so the text keeps
its meaning.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "SECRET_RULES",
    "Scrubber",
    "SecretRule",
    "known_secrets",
    "remember_secrets",
    "scrub",
    "scrub_data",
    "scrub_tokens",
]

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 4
"""Shorter configured "secrets" are not scrubbed: replacing every "ab" would garble text."""
MIN_REMEMBERED_LENGTH = 8
"""Values announced process-wide are scrubbed from *everything*: a short one would garble
ordinary words, so only values long enough to be real credentials are remembered."""


@dataclass(frozen=True)
class SecretRule:
    """A regex for candidates; ``group`` is the part to replace, ``check`` can veto a match."""

    kind: str
    pattern: re.Pattern[str]
    group: int | str = 0
    check: Callable[[str], bool] | None = None


def _has_digit(value: str) -> bool:
    return any(c.isdigit() for c in value)


def _not_a_word(value: str) -> bool:
    # "Basic requirements" is prose; a credential has a digit or a symbol in it.
    return not value.isalpha()


# Token-ish characters: a match must not start or end inside a longer token.
_B = r"(?<![A-Za-z0-9_\-])"
_E = r"(?![A-Za-z0-9_\-])"

SECRET_RULES: tuple[SecretRule, ...] = (
    SecretRule(
        "private_key",
        re.compile(
            r"-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)",
            re.DOTALL,
        ),
    ),
    SecretRule(
        "slack_token",
        re.compile(
            _B + r"(?:xox[abeoprs]-[A-Za-z0-9-]{6,}|xoxe\.xox[bp]-[A-Za-z0-9-]{6,}"
            r"|xapp-[A-Za-z0-9-]{6,}|xwfp-[A-Za-z0-9-]{6,})"  # xwfp-: a Workflow Builder step's
             + _E + r"|https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+"
        ),
    ),
    SecretRule(
        "api_key",
        re.compile(
            _B + r"(?:sk-(?:[A-Za-z]+-)*[A-Za-z0-9_-]{12,}"  # OpenAI, Anthropic, DeepSeek…
            r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
            r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"  # GitHub
            r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
            r"|AIza[0-9A-Za-z_-]{35})" + _E  # Google
        ),
    ),
    SecretRule("aws_key", re.compile(_B + r"(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}" + _E)),
    SecretRule(
        "aws_key",
        re.compile(
            r"(?i)\baws_?secret(?:_?access)?_?key\b[\"']?\s*[:=]\s*[\"']?"
            r"(?P<v>[A-Za-z0-9/+=]{30,})"
        ),
        group="v",
    ),
    SecretRule(
        "jwt",
        re.compile(_B + r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}" + _E),
    ),
    SecretRule(
        "url_password",
        # scheme://user:password@host — the user name stays, the password goes.
        re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s:/@<>|]+:(?P<v>[^\s@/<>|]+)@"),
        group="v",
    ),
    SecretRule(
        "bearer_token",
        re.compile(r"(?i)\b(?:bearer|basic)\s+(?P<v>[A-Za-z0-9._~+/=-]{12,})"),
        group="v",
        check=_not_a_word,
    ),
    SecretRule(
        "secret",
        re.compile(
            r"(?i)\b(?:password|passwd|pwd|passphrase)\b[\"']?\s*[:=]\s*[\"']?"
            r"(?P<v>[^\s\"',;]{4,})"
        ),
        group="v",
    ),
    SecretRule(
        "secret",
        re.compile(
            r"(?i)\b(?:secret|client[_ -]?secret|api[_ -]?key|access[_ -]?key|secret[_ -]?key"
            r"|auth[_ -]?token|access[_ -]?token|token)\b[\"']?\s*[:=]\s*[\"']?"
            r"(?P<v>[^\s\"',;]{8,})"
        ),
        group="v",
        # "token: expired-yesterday" is prose; a credential has digits in it.
        check=_has_digit,
    ),
)

_remembered: set[str] = set()
_remembered_lock = threading.Lock()


def remember_secrets(values: Iterable[str]) -> None:
    """Announce secret values this process has read, so every scrubber removes them."""
    long_enough = {v for v in values if len(v) >= MIN_REMEMBERED_LENGTH}
    if long_enough - _remembered:
        with _remembered_lock:
            _remembered.update(long_enough)


def known_secrets() -> frozenset[str]:
    """Every secret value announced so far."""
    return frozenset(_remembered)


def replace_shapes(text: str, replacement: Callable[[str, str], str]) -> str:
    """``text`` with each credential-shaped part replaced by ``replacement(kind, value)``."""
    for rule in SECRET_RULES:

        def replace(match: re.Match[str], rule: SecretRule = rule) -> str:
            value = match.group(rule.group)
            if value is None or (rule.check is not None and not rule.check(value)):
                return match.group(0)
            start, end = match.span(rule.group)
            offset = match.start(0)
            whole = match.group(0)
            return whole[: start - offset] + replacement(rule.kind, value) + whole[end - offset :]

        text = rule.pattern.sub(replace, text)
    return text


def scrub_tokens(text: str) -> str:
    """``text`` with every credential-shaped substring replaced by ``[REDACTED]``."""
    return replace_shapes(text, lambda _kind, _value: REDACTED)


class Scrubber:
    """Removes secret values (given and remembered) and credential shapes from text and data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._own = frozenset(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)
        self._seen: frozenset[str] = frozenset()
        self._ordered: list[str] = []

    def _values(self) -> list[str]:
        remembered = frozenset(_remembered)
        if remembered != self._seen or len(self._ordered) < len(self._own):
            # Longest first, so a secret containing another is replaced whole.
            self._ordered = sorted(self._own | remembered, key=len, reverse=True)
            self._seen = remembered
        return self._ordered

    def text(self, value: str) -> str:
        for secret in self._values():
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
        # Anything else is rendered with str() by whoever prints it: scrub that rendering.
        return self.text(str(value))

    def data(self, value: Any) -> Any:
        """``value`` with every string inside scrubbed and every other value kept as it is."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {key: self.data(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.data(item) for item in value)
        return value

    def __call__(self, _logger: Any, _method: str, event_dict: Any) -> Any:
        """A structlog processor (``event_dict`` is a mapping)."""
        return {key: self.value(item) for key, item in event_dict.items()}


_default = Scrubber()


def scrub(text: str) -> str:
    """``text`` scrubbed of remembered secret values and credential shapes."""
    return _default.text(text)


def scrub_data(value: Any) -> Any:
    """``value`` (JSON-like data) with every string inside scrubbed; other values kept."""
    return _default.data(value)
