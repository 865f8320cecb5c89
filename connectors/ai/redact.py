"""Redaction of secrets and personal data from text before it leaves the process.

``redact(text)`` first replaces every configured secret value (the ones the process
announced through ``connectors.secrets.remember_secrets`` — settings, connection and
webhook secrets — plus any passed in) with ``[SECRET]``, then, in this order:

=============  ==================  ===================================================
kind           placeholder         what
=============  ==================  ===================================================
private_key    ``[PRIVATE_KEY]``   PEM ``-----BEGIN … PRIVATE KEY-----`` blocks
slack_token    ``[SLACK_TOKEN]``   ``xoxb-``/``xoxp-``/``xapp-``… tokens, Slack webhook URLs
api_key        ``[API_KEY]``       ``sk-…`` (OpenAI, Anthropic), Stripe, GitHub, Google keys
aws_key        ``[AWS_KEY]``       ``AKIA…``/``ASIA…`` access key ids, labelled secret keys
jwt            ``[JWT]``           ``eyJ….eyJ….…`` JSON web tokens
url_password   ``[URL_PASSWORD]``  the password in ``scheme://user:password@host``
bearer_token   ``[BEARER_TOKEN]``  the credential after ``Bearer``/``Basic``
secret         ``[SECRET]``        ``password=…``, ``api_key: …`` values; long random hex or
                                   base64 strings
email          ``[EMAIL]``         e-mail addresses
card           ``[CARD]``          payment card numbers (13-19 digits, Luhn-checked)
iban           ``[IBAN]``          IBANs (mod-97 checked)
account        ``[ACCOUNT]``       digits after "account no" / "acct" / "a/c"
phone          ``[PHONE]``         international (+…) and common national phone formats
=============  ==================  ===================================================

Distinct values of one kind get distinct placeholders (``[EMAIL]``, ``[EMAIL_2]``, …)
so a model can still tell two people apart, and :meth:`Redacted.restore` can put the
originals of the *restorable* kinds (e-mail, phone, IBAN, account: data a workflow
legitimately extracts) back into a model's answer locally. Credentials and card
numbers are never restored: they must not reach a thread or the audit trail either.

Every rule errs towards leaving ordinary business text alone: invoice numbers,
amounts, dates, order ids and UUIDs are not touched.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from connectors.secrets import MIN_SECRET_LENGTH, SECRET_RULES, known_secrets

RESTORABLE_KINDS: frozenset[str] = frozenset({"email", "phone", "iban", "account"})
"""Kinds whose originals may be put back into a model's answer (see :meth:`Redacted.restore`)."""


@dataclass(frozen=True)
class Redacted:
    """The outcome of :func:`redact`."""

    text: str
    kinds: list[str]
    """Kinds removed, sorted, each once (recorded in ``Provenance.redactions``)."""
    _originals: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    """placeholder -> (kind, original); kept private so it is never logged by accident."""

    def restore(self, text: str) -> str:
        """Put back the originals of restorable kinds that a model copied into ``text``."""
        for placeholder, (kind, original) in self._originals.items():
            if kind in RESTORABLE_KINDS:
                text = text.replace(placeholder, original)
        return text


# A rule finds candidates with a regex; ``group`` names the part to replace (the
# rest, e.g. "password=" or "Bearer ", stays so the text keeps its meaning) and
# ``check`` vetoes candidates that only look like the thing (Luhn, mod-97, ...).
@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    group: int | str = 0
    check: Callable[[str], bool] | None = None


def _luhn_ok(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19 or digits[0] not in (2, 3, 4, 5, 6):
        # Issuer prefixes 2-6 cover Mastercard, Visa, Amex, Discover, JCB, UnionPay...;
        # requiring one halves the chance that a long order number passes Luhn by luck.
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    compact = re.sub(r"\s", "", candidate).upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return int(numeric) % 97 == 1


def _phone_ok(candidate: str) -> bool:
    return 7 <= sum(c.isdigit() for c in candidate) <= 15


def _char_class(c: str) -> int:
    return 0 if c.isupper() else 1 if c.islower() else 2 if c.isdigit() else 3


def _random_looking(candidate: str) -> bool:
    # Long identifiers and paths made of words ("Users/JohnSmith/Documents/Q3Report")
    # change character class rarely; random secrets change it at about two in
    # three positions. Mixed case rules out plain words and hex; without a digit
    # the bar is higher.
    classes = [_char_class(c) for c in candidate]
    if not {0, 1} <= set(classes):
        return False
    switches = sum(a != b for a, b in itertools.pairwise(classes))
    return switches / (len(classes) - 1) >= (0.4 if 2 in classes else 0.5)


_PLACEHOLDER = re.compile(r"\[[A-Z]+(?:_[A-Z]+)*(?:_\d+)?\]")

# Token-ish characters: a match must not start or end inside a longer token.
_B = r"(?<![A-Za-z0-9_\-])"
_E = r"(?![A-Za-z0-9_\-])"

_RULES: tuple[_Rule, ...] = (
    # Credentials: the shapes every scrubber in the product shares (connectors/secrets.py).
    *(_Rule(r.kind, r.pattern, r.group, r.check) for r in SECRET_RULES),
    # Long random strings: hex >= 32 (keys, HMAC secrets) and base64-ish >= 32
    # with mixed case and digits (AWS secret keys, generic API secrets).
    _Rule("secret", re.compile(_B + r"[0-9a-fA-F]{32,}" + _E)),
    _Rule(
        "secret",
        re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{32,}={0,2}(?![A-Za-z0-9+/_\-=])"),
        check=_random_looking,
    ),
    _Rule(
        "email",
        re.compile(
            r"(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
            r"[A-Za-z]{2,}\b"
        ),
    ),
    _Rule(
        "card",
        re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])"),
        check=_luhn_ok,
    ),
    _Rule(
        "iban",
        re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])"),
        check=_iban_ok,
    ),
    _Rule(
        "account",
        re.compile(
            r"(?i)\b(?:account|acct|a/c)\.?(?:\s*(?:no\.?|number|num|#))?\s*[:#]?\s*"
            r"(?P<v>\d(?:[ -]?\d){5,16})(?![\w-])"
        ),
        group="v",
    ),
    _Rule(
        "phone",
        re.compile(
            # +44 20 7946 0958, +1 (555) 123-4567, +4915112345678
            r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){2,6}(?![\w-])"
            # (555) 123-4567, 555-123-4567, 555.123.4567
            r"|(?<![\w-])(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-])"
            # 020 7946 0958, 07700 900123 (trunk prefix 0, separated groups)
            r"|(?<![\w-])0\d{2,4}[ -]\d{3,4}(?:[ -]?\d{3,4})(?![\w-])"
        ),
        check=_phone_ok,
    ),
    _Rule(
        "phone",
        re.compile(
            r"(?i)\b(?:phone|tel|telephone|mobile|cell|call me (?:on|at)|whatsapp)\b\.?:?\s*"
            r"(?P<v>\+?\d(?:[ ().-]?\d){6,14})(?![\w-])"
        ),
        group="v",
        check=_phone_ok,
    ),
)


def redact(text: str, secrets: Iterable[str] = ()) -> Redacted:
    """Replace secrets (configured values and shapes) and personal data with placeholders."""
    originals: dict[str, tuple[str, str]] = {}
    by_value: dict[tuple[str, str], str] = {}
    counts: dict[str, int] = {}

    def placeholder_for(kind: str, value: str) -> str:
        key = (kind, value)
        if key not in by_value:
            n = counts.get(kind, 0)
            while True:
                n += 1
                candidate = f"[{kind.upper()}]" if n == 1 else f"[{kind.upper()}_{n}]"
                # A placeholder that already occurs in the text would make
                # restore() substitute into the sender's own words.
                if candidate not in text and candidate not in originals:
                    break
            counts[kind] = n
            by_value[key] = candidate
            originals[candidate] = (kind, value)
        return by_value[key]

    redacted = text
    values = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH} | known_secrets()
    for value in sorted(values, key=len, reverse=True):  # longest first: replaced whole
        if value in redacted:
            redacted = redacted.replace(value, placeholder_for("secret", value))
    for rule in _RULES:

        def replace(match: re.Match[str], rule: _Rule = rule) -> str:
            value = match.group(rule.group)
            if (
                value is None
                or any(p in value for p in originals)  # an earlier rule's placeholder
                or _PLACEHOLDER.fullmatch(value)  # text that was redacted before
                or (rule.check is not None and not rule.check(value))
            ):
                return match.group(0)
            start, end = match.span(rule.group)
            whole_start = match.start(0)
            return (
                match.group(0)[: start - whole_start]
                + placeholder_for(rule.kind, value)
                + match.group(0)[end - whole_start :]
            )

        redacted = rule.pattern.sub(replace, redacted)

    kinds = sorted({kind for kind, _ in originals.values()})
    return Redacted(text=redacted, kinds=kinds, _originals=originals)
