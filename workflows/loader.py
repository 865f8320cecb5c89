"""Load workflow definitions from a folder; every problem reported as file:line: field: message.

A bad file never stops the good ones from loading: ``load_folder`` returns the
workflows that validated and the errors of those that did not, and the server
starts with what it has (``switchboard check`` exits non-zero on any error).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from workflows.expression_check import unsafe_reason
from workflows.expression_types import expression_problems, step_problems
from workflows.expressions import ExpressionError, Expressions
from workflows.extract_warnings import offline_extract_warnings
from workflows.language.spec import RESERVED_STEP_IDS, FieldPath, StepBase
from workflows.language.workflow import Workflow
from workflows.learn_warnings import unread_learning_warnings
from workflows.starter_rules import channel_starter_warnings
from workflows.subflow_check import subworkflow_problems
from workflows.yaml_safe import Lines, YamlProblem, one_line, read_yaml

# A file name in templates/, never a path (and short enough for the file system to stat).
_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_STEP_REF = re.compile(r"^steps\.([a-z][a-z0-9_-]*)$")


@dataclass(frozen=True)
class DefinitionError:
    file: str
    line: int
    field: str
    message: str

    def __post_init__(self) -> None:
        # Always one line: check prints one error per line and logs keep one per record.
        object.__setattr__(self, "message", one_line(self.message))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


@dataclass
class LoadResult:
    workflows: dict[str, Workflow] = field(default_factory=dict)
    errors: list[DefinitionError] = field(default_factory=list)
    warnings: list[DefinitionError] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    """File -> the workflow it defines (a reload keeps a bad file's previous version)."""


@dataclass(frozen=True)
class CheckContext:
    """What references are checked against."""

    templates_dir: Path | None = None
    connections: frozenset[str] | None = None
    connection_types: Mapping[str, str] | None = None
    """Each connection's type (``email``, ``jira``…), for steps that need one type."""


def load_folder(folder: Path, check: CheckContext | None = None) -> LoadResult:
    result = LoadResult()
    if not folder.is_dir():
        result.errors.append(DefinitionError(str(folder), 0, "", "no such folder"))
        return result
    for path in sorted(folder.glob("*.y*ml")):
        if path.stem == "connections":  # named systems, not a workflow (bot/connections.py)
            continue
        workflow, errors = load_file(path, check or CheckContext())
        result.errors.extend(errors)
        if workflow is None:
            continue
        if workflow.name in result.workflows:
            result.errors.append(
                DefinitionError(str(path), 1, "name", f"{workflow.name!r} is defined twice")
            )
            continue
        result.workflows[workflow.name] = workflow
        result.files[str(path)] = workflow.name
        found = channel_starter_warnings(path, workflow)  # workflows/starter_rules.py
        found += offline_extract_warnings(path, workflow)  # workflows/extract_warnings.py
        found += unread_learning_warnings(path, workflow)  # workflows/learn_warnings.py
        result.warnings += [DefinitionError(str(path), *warning) for warning in found]
    _check_children(result)
    return result


def _check_children(result: LoadResult) -> None:
    """``workflow`` steps: the child is loaded, no loops (``workflows/subflow_check.py``)."""
    problems = subworkflow_problems(result.workflows)
    files = {name: file for file, name in result.files.items()}
    for name, key, message in problems:
        lines = read_yaml(Path(files[name])).lines
        result.errors.append(DefinitionError(files[name], lines.get(key, 1), _dotted(key), message))
    for name in {name for name, _, _ in problems}:
        del result.workflows[name]
        del result.files[files[name]]


def load_file(path: Path, check: CheckContext) -> tuple[Workflow | None, list[DefinitionError]]:
    name = str(path)
    try:
        document = read_yaml(path)  # size, aliases, depth, duplicate keys: yaml_safe.py
    except YamlProblem as problem:
        return None, [DefinitionError(name, problem.line, "", problem.message)]
    data, lines = document.data, document.lines
    if not isinstance(data, dict):
        return None, [DefinitionError(name, 1, "", "a workflow file must be a mapping")]
    try:
        workflow = Workflow.model_validate(data)
    except ValidationError as exc:
        return None, [_from_pydantic(name, error, data, lines) for error in exc.errors()]
    errors = [
        DefinitionError(name, lines.get(path_, 1), _dotted(path_), message)
        for path_, message in _check_references(workflow, check)
    ]
    return (None if errors else workflow), errors


def _from_pydantic(file: str, error: Any, data: Any, lines: Lines) -> DefinitionError:
    # Pydantic's loc names the union member after a step's or trigger's index ('set',
    # 'command', ...): that tag is not a key of the document, so it is skipped.
    path: list[Any] = []
    current = data
    loc = list(error["loc"])
    for position, part in enumerate(loc):
        after_index = position >= 2 and loc[position - 2] in ("steps", "triggers")
        is_tag = after_index and isinstance(loc[position - 1], int) and isinstance(part, str)
        if is_tag and (position + 1 < len(loc) or error["type"] != "extra_forbidden"):
            continue
        found, child = _child(current, part)
        if found:
            current = child
        elif not (error["type"] == "extra_forbidden" and position == len(loc) - 1):
            continue
        path.append(part)
    line = lines.get(tuple(path), 1)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    return DefinitionError(file, line, _dotted(path), message)


def _child(current: Any, part: Any) -> tuple[bool, Any]:
    if isinstance(current, dict) and part in current:
        return True, current[part]
    if isinstance(current, list) and isinstance(part, int) and part < len(current):
        return True, current[part]
    return False, None


def _dotted(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


Problem = tuple[FieldPath, str]


def _check_references(workflow: Workflow, check: CheckContext) -> list[Problem]:
    """What each step refers to, as its model lists it: no kind is known here by name."""
    problems: list[Problem] = []
    expressions = Expressions()
    ids = [step.id for step in workflow.steps]
    by_id = {step.id: step for step in workflow.steps}
    for index, step in enumerate(workflow.steps):
        here: FieldPath = ("steps", index)
        problems.extend((here + k, m) for k, m in _check_jumps(step, frozenset(ids)))
        for key, source in step.expressions():
            earlier = frozenset(ids[:index])
            local = step.local_names(key)
            found = _check_expression(expressions, source, earlier, local)
            # Types only of an expression that compiles and names earlier steps (workflows/
            # expression_types.py): each message names the step, since the path gives its index.
            found = found or [f"step {step.id!r}: {m}" for m in expression_problems(source, by_id)]
            problems.extend((here + key, m) for m in found)
        found_here = step_problems(step, by_id)
        problems.extend((here + k, f"step {step.id!r}: {m}") for k, m in found_here)
        problems.extend((here + k, m) for k, m in _check_externals(step, check))
        for key, child in step.children():  # foreach/parallel: their inner steps' references
            problems.extend((here + key + k, m) for k, m in _check_externals(child, check))
    if workflow.on_error.goto and workflow.on_error.goto not in ids:
        problems.append((("on_error", "goto"), f"unknown step {workflow.on_error.goto!r}"))
    return problems


def _check_jumps(step: StepBase, ids: frozenset[str]) -> list[Problem]:
    problems: list[Problem] = []
    for key, target in step.jump_targets():
        if target not in ids:
            problems.append((key, f"jumps to unknown step {target!r}"))
        elif target == step.id and not step.WAITS:
            # Nothing between two passes waits for time or people: the run would spin.
            problems.append((key, "jumps to itself: the run would loop forever without waiting"))
    return problems


def _check_expression(
    expressions: Expressions, source: str, earlier: frozenset[str], local: frozenset[str]
) -> list[str]:
    try:
        unsafe = unsafe_reason(source, local)  # first: it bounds the nesting compile will see
        if unsafe is not None:
            return [unsafe]
        expressions.check(source)
        names = expressions.names(source)
    except ExpressionError as exc:
        return [f"bad expression: {exc}"]
    except (RecursionError, SyntaxError):  # Jinja recurses per bracket; Python caps 200
        return ["bad expression: nested too deeply"]
    problems = []
    for ref in sorted(names):
        match = _STEP_REF.match(ref)
        # steps.get(...), steps.items(): mapping methods, not step ids.
        if match and match.group(1) in RESERVED_STEP_IDS:
            continue
        if match and match.group(1) not in earlier:
            problems.append(f"{ref} is not an earlier step of this workflow")
    return problems


def _check_externals(step: StepBase, check: CheckContext) -> list[Problem]:
    problems: list[Problem] = []
    templates = check.templates_dir
    for key, template in step.templates():
        if not _TEMPLATE_NAME.match(template):
            problems.append((key, "a template name is letters, digits and _"))
        elif templates is not None and not (templates / f"{template}.json.j2").is_file():
            problems.append((key, f"no template {template}.json.j2 in templates/"))
    reference = step.connection_reference()
    if reference and check.connections is not None and reference[1] not in check.connections:
        key, connection = reference
        problems.append((key, f"connection {connection!r} is not declared"))
    elif reference and check.connection_types and step.connection_types():
        key, connection = reference
        actual = check.connection_types.get(connection)
        if actual is not None and actual not in step.connection_types():
            wanted = " or ".join(step.connection_types())
            problems.append((key, f"connection {connection!r} is {actual}, not {wanted}"))
    return problems


__all__ = [
    "CheckContext",
    "DefinitionError",
    "LoadResult",
    "load_file",
    "load_folder",
]
