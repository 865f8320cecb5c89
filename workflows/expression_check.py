"""What ``check`` refuses in a definition's expressions beyond what fails to compile.

The sandbox in ``workflows/expressions.py`` stops attribute access to internals
at run time; refusing the attempts here means a definition that carries one never
loads, so nobody has to trust the sandbox alone. Refused, with a reason:

- attribute names starting with ``_`` (``__class__``, ``__globals__``) reached by
  ``.name``, ``['name']``, ``|attr('name')`` or the ``attribute=`` argument of
  ``map``/``sort``/``selectattr``/... (dotted paths are checked part by part);
- ``|attr(...)`` with a computed name, which could spell a dunder at run time;
- introspection attributes that need no underscore (``mro``, frame/code objects);
- names that are not in the expression namespace (``input``, ``steps``, ``run``
  — what ``engine._scope`` passes) or among the harmless Jinja globals; such a
  name is undefined at run time anyway (StrictUndefined), so it is a typo or a probe.
"""

from __future__ import annotations

from jinja2 import TemplateError, meta, nodes

from workflows.expressions import Expressions

# Jinja's code generator is quadratic in nesting: -(-(-(...))) 300 deep took 8 s to compile.
# Real expressions are under 15 levels of syntax tree.
MAX_EXPRESSION_DEPTH = 64
NAMESPACE = frozenset({"input", "steps", "run"})
_GLOBALS = frozenset({"range", "dict", "namespace"})
# Filter/test -> how many leading positional arguments name attributes (plus any attribute=);
# map's positional arguments are a filter name and its arguments, so only attribute= counts.
_ATTRIBUTE_FILTERS = {
    "attr": 1,
    "map": 0,
    "selectattr": 1,
    "rejectattr": 1,
    "groupby": 1,
    "sum": 1,
    "sort": 3,
    "unique": 2,
    "min": 2,
    "max": 2,
}
_INTROSPECTION = frozenset(
    {
        "mro",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "ag_code",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "tb_frame",
        "func_globals",
        "func_code",
    }
)

# The same environment that compiles and evaluates definitions: what it parses, we check.
_ENVIRONMENT = Expressions()._env


def unsafe_reason(source: str, local: frozenset[str] = frozenset()) -> str | None:
    """Why ``source`` is refused, or None; run before compiling (syntax errors are left to it)."""
    try:
        ast = _ENVIRONMENT.parse(source)
    except TemplateError:
        return None  # Expressions.check reports it with its position
    if _depth(ast) > MAX_EXPRESSION_DEPTH:
        return f"bad expression: nested deeper than {MAX_EXPRESSION_DEPTH} levels"
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter, nodes.Test)):
        reason = _node_reason(node)
        if reason:
            return f"unsafe expression: {reason}"
    try:
        undeclared = meta.find_undeclared_variables(ast)  # compiles: may find an unknown filter
    except TemplateError:
        return None  # Expressions.check reports it
    # find_undeclared_variables leaves out the environment's globals (lipsum, cycler, ...).
    names = undeclared | {
        name.name
        for name in ast.find_all(nodes.Name)
        if name.ctx == "load" and name.name in _ENVIRONMENT.globals
    }
    unknown = sorted(names - NAMESPACE - _GLOBALS - local)
    if unknown:
        seen = ", ".join(sorted(NAMESPACE | local))
        return f"unknown name {unknown[0]!r} (expressions see {seen})"
    return None


def _depth(root: nodes.Node) -> int:
    deepest, stack = 0, [(root, 1)]
    while stack:  # iterative: the tree is as deep as the author made it
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return deepest


def _node_reason(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr):
        return _name_reason(node.attr)
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        value = node.arg.value
        return _name_reason(value) if isinstance(value, str) else None
    if isinstance(node, nodes.Filter | nodes.Test) and node.name in _ATTRIBUTE_FILTERS:
        return _filter_reason(node)
    return None


def _filter_reason(node: nodes.Filter | nodes.Test) -> str | None:
    if node.name == "attr" and not (node.args and isinstance(node.args[0], nodes.Const)):
        return "attr() needs a literal attribute name"
    positional = node.args[: _ATTRIBUTE_FILTERS[node.name]]
    arguments = positional + [kw.value for kw in node.kwargs if kw.key == "attribute"]
    for argument in arguments:
        if isinstance(argument, nodes.Const) and isinstance(argument.value, str):
            for part in argument.value.split("."):  # Jinja's attribute= follows dotted paths
                reason = _name_reason(part)
                if reason:
                    return reason
    return None


def _name_reason(name: str) -> str | None:
    if name.startswith("_"):
        return f"{name!r} is not allowed (internal attribute)"
    if name in _INTROSPECTION:
        return f"{name!r} is not allowed (introspection)"
    return None
