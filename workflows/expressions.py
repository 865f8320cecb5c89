"""Expressions in workflow definitions: Jinja2 in a sandbox, strict about undefined names.

Only the operator's definition is ever compiled. Request text, AI output and
connector responses reach templates as *values in the context*, so a request
that says ``{{ ''.__class__.__mro__ }}`` is rendered as those characters and
never evaluated. The sandbox additionally blocks attribute access to
internals should a definition try it.

A string that is exactly one ``{{ expression }}`` evaluates to the expression's
native value (a number stays a number); any other string renders to text.

URL paths are rendered by :meth:`Expressions.render_path`: the author's literal text stays
as written and every interpolated value is percent-encoded as (part of) ONE path segment,
so request text can never add segments, climb with ``..`` or start a query or fragment.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from connectors.ai.money import as_money, revive
from connectors.urls import encode_segment

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)


class ExpressionError(Exception):
    """An expression failed to compile or evaluate; the message names the expression."""


class _SandboxWithMoney(ImmutableSandboxedEnvironment):
    """The sandbox, where money read back from JSON is ``Money`` again on every access.

    ``runs.context`` is JSON, so an extracted ``money`` value comes back as
    ``{"amount": 640.0, "currency": "EUR"}``; reviving it where it is read lets
    ``steps.fields.amount > 100`` compare and ``{{ steps.fields.amount }}`` render
    ``640.00 EUR`` (see ``connectors/ai/money.py``).
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Data before methods: `steps.fan.items` is foreach's output, and a webhook key
        # named `keys` is that key, not dict.keys (Jinja tries the attribute first).
        if isinstance(obj, Mapping) and attribute in obj:
            return revive(obj[attribute])
        return revive(super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        return revive(super().getitem(obj, argument))


class Expressions:
    """Compiles and evaluates definition expressions; caches compiled forms."""

    def __init__(self) -> None:
        self._env = _SandboxWithMoney(
            undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
        )
        self._env.filters["money"] = _money
        # The same language, but every {{ value }} is finalized into one encoded segment.
        self._path_env = _SandboxWithMoney(
            undefined=StrictUndefined, autoescape=False, finalize=encode_segment
        )
        self._path_env.filters["money"] = _money
        self._compile_path = functools.lru_cache(maxsize=1024)(self._compile_path_uncached)
        self._compile_expression = functools.lru_cache(maxsize=4096)(
            self._compile_expression_uncached
        )
        self._compile_template = functools.lru_cache(maxsize=4096)(self._compile_template_uncached)

    def check(self, source: str) -> None:
        """Raise ExpressionError if ``source`` does not compile or reaches for internals.

        The sandbox would stop ``''.__class__`` at run time anyway; ``switchboard check``
        refuses it up front so a definition never carries such an expression.
        """
        try:
            ast = self._env.parse(source)
        except TemplateError as exc:
            raise ExpressionError(f"{source!r}: {exc}") from None
        for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
            name: object = ""
            if isinstance(node, nodes.Getattr):
                name = node.attr
            elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
                name = node.arg.value
            if isinstance(name, str) and name.startswith("_"):
                raise ExpressionError(f"unsafe expression: {name!r} is not allowed")
        match = _SINGLE_EXPRESSION.match(source)
        if match and "{{" not in match.group("expr"):
            self._compile_expression(match.group("expr"))
        else:
            self._compile_template(source)

    def names(self, source: str) -> set[str]:
        """Top-level dotted references such as ``steps.fields``, for reference checks."""
        try:
            ast = self._env.parse(source)
        except TemplateError as exc:
            raise ExpressionError(f"{source!r}: {exc}") from None
        found: set[str] = set()
        for getattr_node in ast.find_all(nodes.Getattr):
            if isinstance(getattr_node.node, nodes.Name):
                found.add(f"{getattr_node.node.name}.{getattr_node.attr}")
        return found

    def evaluate(self, value: Any, context: Mapping[str, Any]) -> Any:
        """Render every string inside ``value`` (recursing into lists and dicts)."""
        if isinstance(value, str):
            return self._evaluate_string(value, context)
        if isinstance(value, list):
            return [self.evaluate(item, context) for item in value]
        if isinstance(value, dict):
            return {key: self.evaluate(item, context) for key, item in value.items()}
        return value

    def render_path(self, source: str, context: Mapping[str, Any]) -> str:
        """Render a URL path template; each interpolated value is one encoded segment."""
        with _as_expression_error(source):
            return str(self._compile_path(source).render(**context))

    def truthy(self, source: str | bool, context: Mapping[str, Any]) -> bool:
        if isinstance(source, bool):
            return source
        return bool(self._evaluate_string(source, context))

    def _evaluate_string(self, source: str, context: Mapping[str, Any]) -> Any:
        if "{{" not in source and "{%" not in source:
            return source
        match = _SINGLE_EXPRESSION.match(source)
        with _as_expression_error(source):
            if match and "{{" not in match.group("expr"):
                return self._compile_expression(match.group("expr"))(**context)
            return self._compile_template(source).render(**context)

    def _compile_expression_uncached(self, expr: str) -> Any:
        try:
            return self._env.compile_expression(expr.strip(), undefined_to_none=False)
        except TemplateError as exc:
            raise ExpressionError(f"{{{{{expr}}}}}: {exc}") from None

    def _compile_template_uncached(self, source: str) -> Any:
        try:
            return self._env.from_string(source)
        except TemplateError as exc:
            raise ExpressionError(f"{source.strip()!r}: {exc}") from None

    def _compile_path_uncached(self, source: str) -> Any:
        try:
            return self._path_env.from_string(source)
        except TemplateError as exc:
            raise ExpressionError(f"{source.strip()!r}: {exc}") from None


@contextlib.contextmanager
def _as_expression_error(source: str) -> Iterator[None]:
    """Evaluation failures as one ExpressionError that names the expression."""
    try:
        yield
    except ExpressionError:
        raise
    except TemplateError as exc:
        raise ExpressionError(f"{source.strip()!r}: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise ExpressionError(f"{source.strip()!r}: {type(exc).__name__}: {exc}") from None


def _money(value: Any, currency: str = "") -> str:
    """``{{ x | money('EUR') }}``: a number, money or written money as ``1,234.50 EUR``."""
    return str(as_money(value, currency))
