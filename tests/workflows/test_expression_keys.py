"""Dot syntax reads a mapping's key before its methods: ``steps.fan.items`` is the
``foreach`` step's ``items`` output, not ``dict.items``. Data keys named like mapping
methods (from a webhook body, a connector's answer) read as data too; calling a method
(``x.items()`` in a for loop) still works where no key has its name."""

from __future__ import annotations

from workflows.expressions import Expressions


def test_a_key_named_like_a_method_reads_as_the_key() -> None:
    scope = {"steps": {"fan": {"items": [1, 2], "keys": "k", "values": {"a": 1}}}}
    expressions = Expressions()
    assert expressions.evaluate("{{ steps.fan.items }}", scope) == [1, 2]
    assert expressions.evaluate("{{ steps.fan.keys }}", scope) == "k"
    assert expressions.evaluate("{{ steps.fan.values.a }}", scope) == 1


def test_methods_still_work_where_no_key_has_their_name() -> None:
    scope = {"input": {"body": {"a": 1, "b": 2}}}
    rendered = Expressions().evaluate(
        "{% for k, v in input.body.items() %}{{ k }}={{ v }};{% endfor %}", scope
    )
    assert rendered == "a=1;b=2;"
