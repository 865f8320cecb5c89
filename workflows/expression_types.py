"""What ``check`` knows of the values expressions compare, so type errors fail before a run.

Every step model says which outputs it gives (``outputs()``), the type of those whose
type the definition fixes (``output_types()``: an ``extract`` field's declared type, a
classification's confidence, an SQL row count...) and the few texts some always are
(``output_choices()``: a classification's labels). From those, and the literals of an
expression, this module types the operands of comparisons and arithmetic and refuses,
with the fix, what cannot work at run time:

- ``steps.<id>.<field>`` where the step does not output ``field`` (a typo: StrictUndefined
  would stop the run there);
- ordering text against a number or money (``steps.fields.purpose > 100``: a TypeError),
  ``==`` between text and a number (never true), arithmetic mixing text and numbers;
- a ``switch`` case that its value can never take (a label the classifier does not have,
  ``yes`` for a yes/no value, which the switch compares as ``True``/``False``), and a
  switch on money (compared as its text, ``640.00 EUR``);
- a ``when:`` that is plain text: without ``{{ }}`` it is a non-empty string, always true.

An operand whose type is not known (``input.*``, an ``http`` body, a ``call`` result) is
never refused: this catches what is certain to fail, not what might.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from jinja2 import TemplateError, nodes

from workflows.expression_check import _ENVIRONMENT
from workflows.language.spec import FieldPath, StepBase, ValueType
from workflows.language.steps.approve import ApproveStep
from workflows.language.steps.basic import SwitchStep

Problem = tuple[FieldPath, str]
Steps = Mapping[str, StepBase]

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)
_NUMERIC = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")
_MAPPING_METHODS = frozenset(name for name in dir(dict) if not name.startswith("_"))
_ALWAYS_OUTPUT = frozenset({"skipped"})  # the engine's mark on a step whose when: was false
_NUMBERS = frozenset({"number", "money", "bool"})
_ORDER = {"gt": ">", "gteq": ">=", "lt": "<", "lteq": "<="}
_EQUAL = {"eq": "==", "ne": "!="}
_WORDS: dict[str | None, str] = {
    "number": "a number",
    "money": "money",
    "text": "text",
    "bool": "yes/no",
    "list": "a list",
    "mapping": "a mapping",
}
_FILTER_TYPES: dict[str, ValueType] = {
    **dict.fromkeys(("length", "count", "int", "float", "wordcount"), "number"),
    **dict.fromkeys(
        ("string", "lower", "upper", "title", "capitalize", "trim", "join", "replace"), "text"
    ),
    **dict.fromkeys(("format", "truncate", "striptags", "e", "escape", "urlencode"), "text"),
    **dict.fromkeys(("list", "sort", "unique", "batch", "slice"), "list"),
    "money": "money",
    "dictsort": "list",
}
_KEEPS_TYPE = frozenset({"abs", "round", "default", "d"})


@dataclass(frozen=True)
class Typed:
    """An operand: its type (None: unknown), how messages name it and how to fix it."""

    type: ValueType | None
    name: str = "a value"
    hint: str = ""
    choices: tuple[str, ...] | None = None

    @property
    def what(self) -> str:
        return _WORDS.get(self.type, "a value")


def expression_problems(source: str, steps: Steps) -> list[str]:
    """Type errors and unknown outputs in one expression string of a definition."""
    try:
        ast = _ENVIRONMENT.parse(source)
    except TemplateError:
        return []  # the loader reports syntax errors with their position
    problems = [_unknown_output(node, steps) for node in ast.find_all(_ACCESS)]
    for compare in ast.find_all(nodes.Compare):
        left = compare.expr
        for operand in compare.ops:
            problems.append(_compare(_type(left, steps), operand.op, _type(operand.expr, steps)))
            left = operand.expr
    for arithmetic in ast.find_all((nodes.Add, nodes.Sub, nodes.Div)):
        problems.append(_arithmetic(arithmetic, steps))
    return sorted({problem for problem in problems if problem})


def step_problems(step: StepBase, steps: Steps) -> list[Problem]:
    """What a step's ``when:`` and (for a switch) its cases can never do."""
    problems: list[Problem] = []
    if isinstance(step.when, str) and "{{" not in step.when and "{%" not in step.when:
        problems.append((("when",), _plain_when(step.when)))
    if isinstance(step, SwitchStep):
        problems.extend(_switch_problems(step, steps))
    if isinstance(step, ApproveStep):
        outcomes = step.output_choices()["outcome"]
        problems += [
            (("approve", "next", outcome), _no_outcome(outcome, outcomes))
            for outcome in step.approve.next
            if outcome not in outcomes
        ]
    return problems


def _no_outcome(outcome: str, outcomes: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(outcome, outcomes, n=1)
    fix = f"did you mean {close[0]}? " if close else ""
    return (
        f"next: {outcome!r} is not an outcome of this approval, so it is never taken; "
        f"{fix}outcomes: {', '.join(outcomes)} (custom ones come from outcomes:)"
    )


def _plain_when(text: str) -> str:
    return (
        f"{text!r} is plain text, so the step always runs; write the condition as one "
        f'expression: when: "{{{{ {text.strip() or "false"} }}}}"'
    )


def _switch_problems(step: SwitchStep, steps: Steps) -> list[Problem]:
    spec = step.switch
    match = _SINGLE.match(spec.value)
    if not match or "{{" in match.group("expr"):
        return []
    try:
        value = _type(_ENVIRONMENT.parse(spec.value).body[0].nodes[0], steps)  # type: ignore[attr-defined]
    except (TemplateError, IndexError, AttributeError):
        return []
    if value.type == "money":
        reason = (
            f"{value.name} is money, and a switch compares its text (e.g. '640.00 EUR'), "
            f"so no case is taken; compare it in when: (e.g. {value.name} > 1000) instead"
        )
        return [(("switch", "value"), reason)]
    problems: list[Problem] = []
    for case in spec.cases:
        never = _never_taken(value, case)
        if never:
            problems.append((("switch", "cases", case), f"case {case!r} is never taken: {never}"))
    return problems


def _never_taken(value: Typed, case: str) -> str | None:
    if value.type == "bool" and case not in ("True", "False"):
        return f"{value.name} is yes/no, which a switch compares as 'True' or 'False'"
    if value.type == "number" and not _NUMERIC.match(case):
        return f"{value.name} is a number"
    if value.choices is not None and case not in (*value.choices, "None"):
        return f"{value.name} is one of {', '.join(value.choices)}"
    return None


_ACCESS = (nodes.Getattr, nodes.Getitem)


def _path(node: nodes.Node) -> tuple[str, list[str]] | None:
    """``steps.fields.amount`` as ("steps", ["fields", "amount"]); None if not a plain path."""
    parts: list[str] = []
    while isinstance(node, _ACCESS):
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            parts.append(node.arg.value)
        else:
            return None
        node = node.node
    if not isinstance(node, nodes.Name):
        return None
    return node.name, parts[::-1]


def _output(node: nodes.Node, steps: Steps) -> tuple[StepBase, str] | None:
    path = _path(node)
    if path is None or path[0] != "steps" or len(path[1]) != 2:
        return None
    step = steps.get(path[1][0])
    return (step, path[1][1]) if step is not None else None


def _unknown_output(node: nodes.Node, steps: Steps) -> str | None:
    found = _output(node, steps)
    if found is None:
        return None
    step, name = found
    outputs = step.outputs()
    if outputs is None or name in outputs or name in _ALWAYS_OUTPUT | _MAPPING_METHODS:
        return None
    close = difflib.get_close_matches(name, outputs, n=1)
    fix = f"did you mean {close[0]}? " if close else ""
    return (
        f"step {step.id!r} has no output {name!r}; {fix}"
        f"a {step.KIND} step gives {', '.join(outputs) or 'nothing'}"
    )


def _type(node: nodes.Node, steps: Steps) -> Typed:
    if isinstance(node, nodes.Const):
        return _literal(node.value)
    if isinstance(node, _ACCESS):
        return _output_type(node, steps)
    if isinstance(node, nodes.Filter):
        return _filter_type(node, steps)
    if isinstance(node, nodes.Compare | nodes.Not | nodes.Test):
        return Typed("bool")
    if isinstance(node, nodes.Concat):
        return Typed("text")
    if isinstance(node, nodes.List | nodes.Tuple):
        return Typed("list")
    if isinstance(node, nodes.Dict):
        return Typed("mapping")
    if isinstance(node, nodes.Neg | nodes.Pos):
        return _type(node.node, steps)
    if isinstance(node, nodes.BinExpr):
        return _binary_type(node, steps)
    return Typed(None)


def _literal(value: object) -> Typed:
    shown = repr(value)
    if isinstance(value, bool):
        return Typed("bool", shown)
    if isinstance(value, int | float):
        return Typed("number", shown)
    if isinstance(value, str):
        hint = f"write {value.strip()} without quotes" if _NUMERIC.match(value) else ""
        return Typed("text", shown, hint)
    return Typed(None, shown)


def _output_type(node: nodes.Node, steps: Steps) -> Typed:
    found = _output(node, steps)
    if found is None:
        return Typed(None)
    step, name = found
    shown = f"steps.{step.id}.{name}"
    kind = step.output_types().get(name)
    hint = f"convert it: {shown} | float"
    if step.KIND == "extract" and kind == "text":
        hint = f"declare it `{name}: money` (or int, float) in step {step.id!r}'s fields"
    return Typed(kind, shown, hint, step.output_choices().get(name))


def _filter_type(node: nodes.Filter, steps: Steps) -> Typed:
    if node.name in _FILTER_TYPES:
        return Typed(_FILTER_TYPES[node.name], f"… | {node.name}")
    if node.name in _KEEPS_TYPE and node.node is not None:
        operand = _type(node.node, steps)
        if node.name in ("default", "d"):
            fallback = _type(node.args[0], steps) if node.args else Typed(None)
            return operand if fallback.type == operand.type else Typed(None)
        return operand
    return Typed(None)


def _binary_type(node: nodes.BinExpr, steps: Steps) -> Typed:
    kinds = {_type(node.left, steps).type, _type(node.right, steps).type}
    if "money" in kinds and kinds <= _NUMBERS:
        money_ratio = isinstance(node, nodes.Div) and kinds == {"money"}
        return Typed("number" if money_ratio else "money")
    if kinds <= {"number", "bool"}:
        return Typed("number")
    if kinds == {"text"} and isinstance(node, nodes.Add):
        return Typed("text")
    return Typed(None)


def _compare(left: Typed, op: str, right: Typed) -> str | None:
    if left.type is None or right.type is None:
        return None
    kinds = {left.type, right.type}
    if op in _ORDER and not (kinds <= _NUMBERS or len(kinds) == 1):
        verdict = "which fails at run time"
        return _mismatch(left, _ORDER[op], right, verdict)
    if op in _EQUAL and "text" in kinds and kinds & _NUMBERS:
        verdict = "which is never true" if op == "eq" else "which is always true"
        return _mismatch(left, _EQUAL[op], right, verdict)
    return None


def _arithmetic(node: nodes.BinExpr, steps: Steps) -> str | None:
    left, right = _type(node.left, steps), _type(node.right, steps)
    kinds = {left.type, right.type}
    if None in kinds or not ("text" in kinds and kinds & _NUMBERS):
        return None
    op = {nodes.Add: "+", nodes.Sub: "-", nodes.Div: "/"}[type(node)]
    return _mismatch(left, op, right, "which fails at run time")


def _mismatch(left: Typed, op: str, right: Typed, verdict: str) -> str:
    hints = [side.hint for side in (left, right) if side.type == "text" and side.hint]
    fix = hints[0] if hints else "compare values of the same type"
    return (
        f"type error: {left.name} {op} {right.name} puts {left.what} against "
        f"{right.what}, {verdict}; {fix}"
    )
