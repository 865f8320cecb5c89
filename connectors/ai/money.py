"""Money: an amount with its currency, as the ``extract`` step's ``money`` fields give it.

A ``Money`` *is* its JSON form, ``{"amount": 640.0, "currency": "EUR"}`` (a ``dict``
subclass), so it is stored in ``runs.context``, sent in an ``http`` step's ``json:`` and
written to the audit trail without any conversion. Read back from JSON it is a plain
dict again; ``revive`` turns a mapping of exactly that shape back into ``Money``
(expressions do so on every attribute or item access, see ``workflows/expressions.py``).

In expressions it behaves like a number: it compares with numbers and with money of the
same currency, and ``+ - * /`` with numbers keep the currency. It renders as
``"12,400.50 EUR"`` (two decimals, thousands grouped; just ``"5.00"`` without a currency).
Arithmetic is decimal, rounded to cents, so ``0.1 + 0.2`` of a currency is ``0.30``.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
_CODE = re.compile(r"[A-Z]{3}")
_CENT = Decimal("0.01")
_WRITTEN = re.compile(
    r"^\s*(?P<pre>[A-Za-z]{3}|[$€£¥])?\s*(?P<number>-?[\d][\d.,' ]*(?:\s?[kKmM])?)\s*"
    r"(?P<post>[A-Za-z]{3}|[$€£¥])?\s*$"
)

Number = int | float | Decimal


def parse_amount(raw: str) -> float | None:
    """``"12,400"``, ``"12.400,50"``, ``"1.2k"`` as a number; ``None`` when it is not one."""
    text = re.sub(r"[^\d.,kKmM-]", "", raw)
    multiplier = 1.0
    if text[-1:] in "kK":
        multiplier, text = 1e3, text[:-1]
    elif text[-1:] in "mM":
        multiplier, text = 1e6, text[:-1]
    # "12,400" and "12.400,50": the last separator followed by exactly 1-2 digits is decimal.
    match = re.fullmatch(r"(-?[\d.,]*?)(?:[.,](\d{1,2}))?", text)
    if not match:
        return None
    whole = re.sub(r"[.,]", "", match.group(1))
    if not whole.lstrip("-"):
        return None
    value = float(f"{whole}.{match.group(2)}" if match.group(2) else whole)
    return value * multiplier


class Money(dict[str, Any]):
    """An amount in cents precision and an ISO 4217 code (``""`` when the text had none)."""

    def __init__(self, amount: Number | str, currency: str = "") -> None:
        try:
            value = Decimal(str(amount)).quantize(_CENT, rounding=ROUND_HALF_EVEN)
        except InvalidOperation:
            raise ValueError(f"not an amount: {amount!r}") from None
        if not value.is_finite():
            raise ValueError(f"not an amount: {amount!r}")
        code = CURRENCY_SYMBOLS.get(currency, currency.upper())
        if code and not _CODE.fullmatch(code):
            raise ValueError(f"not a currency code: {currency!r}")
        super().__init__(amount=float(value), currency=code)
        self._value = value

    @classmethod
    def parse(cls, text: str) -> Money | None:
        """``"640 EUR"``, ``"EUR 12,400.50"``, ``"$1.2k"``, ``"640"``; ``None`` if not money."""
        match = _WRITTEN.match(text)
        if not match or (match.group("pre") and match.group("post")):
            return None
        amount = parse_amount(match.group("number"))
        if amount is None:
            return None
        return cls(amount, match.group("pre") or match.group("post") or "")

    @property
    def amount(self) -> float:
        return float(self._value)

    @property
    def currency(self) -> str:
        return str(self["currency"])

    def __str__(self) -> str:
        return f"{self._value:,.2f} {self.currency}".rstrip()

    def __repr__(self) -> str:
        return f"Money({str(self._value)!r}, {self.currency!r})"

    def _other(self, other: object) -> Decimal | None:
        """``other`` as a decimal amount: a number, or money of this currency."""
        if isinstance(other, bool):
            return None
        if isinstance(other, Money):
            if other.currency and self.currency and other.currency != self.currency:
                raise TypeError(f"cannot combine {self.currency} and {other.currency}")
            return other._value
        if isinstance(other, int | float | Decimal):
            return Decimal(str(other))
        return None

    def _same(self, amount: Decimal) -> Money:
        return Money(amount, self.currency)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Money):
            return self._value == other._value and self.currency == other.currency
        if isinstance(other, dict):
            return dict.__eq__(self, other)
        value = self._other(other)
        return value is not None and self._value == value

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None

    def _compare(self, other: object) -> Decimal:
        value = self._other(other)
        if value is None:
            raise TypeError(f"cannot compare money with {type(other).__name__}")
        return value

    def __lt__(self, other: object) -> bool:
        return self._value < self._compare(other)

    def __le__(self, other: object) -> bool:
        return self._value <= self._compare(other)

    def __gt__(self, other: object) -> bool:
        return self._value > self._compare(other)

    def __ge__(self, other: object) -> bool:
        return self._value >= self._compare(other)

    def __add__(self, other: object) -> Money:
        return self._same(self._value + self._compare(other))

    __radd__ = __add__

    def __sub__(self, other: object) -> Money:
        return self._same(self._value - self._compare(other))

    def __rsub__(self, other: object) -> Money:
        return self._same(self._compare(other) - self._value)

    def __mul__(self, other: object) -> Money:
        if isinstance(other, Money):
            raise TypeError("cannot multiply money by money")
        return self._same(self._value * self._compare(other))

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> Any:
        divisor = self._compare(other)
        if divisor == 0:
            raise ZeroDivisionError("money divided by zero")
        if isinstance(other, Money):
            return float(self._value / divisor)  # a ratio, without a currency
        return self._same(self._value / divisor)

    def __neg__(self) -> Money:
        return self._same(-self._value)

    def __abs__(self) -> Money:
        return self._same(abs(self._value))

    def __round__(self, ndigits: int | None = None) -> Money:
        return self._same(round(self._value, ndigits or 0))

    def __float__(self) -> float:
        return float(self._value)

    def __int__(self) -> int:
        return int(self._value)

    def __bool__(self) -> bool:
        return self._value != 0


def revive(value: Any) -> Any:
    """``value``, or ``Money`` when it is money's JSON form read back as a plain dict."""
    if type(value) is not dict or len(value) != 2:
        return value
    amount, currency = value.get("amount"), value.get("currency")
    if (
        isinstance(amount, int | float)
        and not isinstance(amount, bool)
        and isinstance(currency, str)
        and (currency == "" or _CODE.fullmatch(currency))
    ):
        try:
            return Money(amount, currency)
        except ValueError:
            return value
    return value


def as_money(value: Any, currency: str = "") -> Money:
    """The ``money`` filter: a number (with ``currency``), money, or written money as Money."""
    value = revive(value)
    if isinstance(value, Money):
        return Money(value.amount, currency or value.currency)
    if isinstance(value, str):
        parsed = Money.parse(value)
        if parsed is None:
            raise ValueError(f"not money: {value!r}")
        return Money(parsed.amount, currency or parsed.currency)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return Money(value, currency)
    raise ValueError(f"not money: {type(value).__name__}")
