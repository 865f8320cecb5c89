"""The ``switchboard test`` command: a workflow's own ``tests:``, or one ad-hoc run.

``switchboard test FILE_OR_DIR`` runs every test in the file (or in every workflow file
of the folder); ``switchboard test WORKFLOW --text "…"`` runs one request, with recorded
answers from ``--fixtures``. Exit 0 when everything passed, 1 otherwise.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from bot.cli_support import counted, fail, settings
from workflows.language.workflow import Workflow
from workflows.language.workflow_tests import CaseInput, Fixtures, WorkflowTest
from workflows.loader import CheckContext, load_file
from workflows.yaml_safe import YamlProblem, read_yaml

if TYPE_CHECKING:
    from bot.workflow_test import CaseResult


def workflow_test_command(
    target: Annotated[str, typer.Argument(help="A workflow file, a folder, or a workflow name")],
    text: Annotated[str | None, typer.Option(help="Run this request instead of tests:")] = None,
    as_user: Annotated[str, typer.Option("--as", help="Who makes the request")] = "U0TESTER",
    approve: Annotated[bool, typer.Option(help="Approve every approval")] = False,
    reject: Annotated[bool, typer.Option(help="Reject every approval")] = False,
    fixtures: Annotated[Path | None, typer.Option(help="Recorded AI and connection answers")] = (
        None
    ),
) -> None:
    """Run workflows on the real engine with stubbed connections and AI; no Slack needed."""
    config = settings()
    files = _files(target, config.workflows_dir)
    if not files:
        fail(f"{target}: no such workflow file, folder or workflow name")
    if approve and reject:
        fail("--approve and --reject: choose one")
    workflows = [_load(path, config.templates_dir) for path in files]
    if text is not None:
        if len(workflows) != 1:
            fail("--text runs one workflow: give a file or a workflow name")
        case = WorkflowTest(
            name="--text",
            input=CaseInput(text=text, user=as_user),
            decisions=["approve"] if approve else ["reject"] if reject else [],
            **_fixtures(fixtures).model_dump(by_alias=True),
        )
        plan = [(workflows[0], case, True)]
    else:
        plan = [(wf, case, False) for wf in workflows for case in wf.tests]
        if not plan:
            fail(f"{target}: no tests: (add some, or run one request with --text)", code=1)
    results = asyncio.run(_run_all(plan, config.templates_dir))
    for result in results:
        _print(result)
    failed = sum(not result.ok for result in results)
    typer.echo(f"{counted(len(results), 'test')}, {len(results) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


async def _run_all(
    plan: list[tuple[Workflow, WorkflowTest, bool]], templates_dir: Path
) -> list[CaseResult]:
    # Imported here: the engine and the offline model are not needed by the other commands.
    from bot.workflow_test import open_bench, run_case
    from connectors.ai.local import LocalProvider

    local = LocalProvider()
    async with open_bench(local, templates_dir) as bench:
        return [await run_case(bench, wf, case, adhoc=adhoc) for wf, case, adhoc in plan]


def _files(target: str, workflows_dir: Path) -> list[Path]:
    path = Path(target)
    if path.is_dir():
        return [p for p in sorted(path.glob("*.y*ml")) if p.stem != "connections"]
    if path.is_file():
        return [path]
    named = [p for p in sorted(workflows_dir.glob("*.y*ml")) if p.stem == target]
    return named[:1]


def _load(path: Path, templates_dir: Path) -> Workflow:
    workflow, errors = load_file(path, CheckContext(templates_dir=templates_dir))
    for error in errors:
        typer.echo(str(error), err=True)
    if workflow is None or errors:
        fail(f"{path}: does not load (see switchboard check)", code=1)
    assert workflow is not None
    return workflow


def _fixtures(path: Path | None) -> Fixtures:
    if path is None:
        return Fixtures()
    try:
        return Fixtures.model_validate(read_yaml(path).data or {})
    except YamlProblem as problem:
        fail(f"{path}:{problem.line}: {problem.message}", code=1)
    except (OSError, ValidationError) as exc:
        first = str(exc).splitlines()[:3]
        fail(f"{path}: not a fixtures file: {' '.join(first)}", code=1)
    raise AssertionError("unreachable")


def _print(result: CaseResult) -> None:
    mark = "ok" if result.ok else "FAILED"
    typer.echo(f"{result.workflow}: {result.test}: {mark} ({result.status})")
    typer.echo(f"  path: {' → '.join(result.path) or '(none)'}")
    for message in result.messages:
        where = f"{message.channel} thread" if message.thread_ts else message.channel
        text = message.text.replace("\n", " ⏎ ")
        typer.echo(f"  posted in {where}: {text[:300]}")
    for call in result.calls:
        typer.echo(f"  called {str(call)[:300]}")
    for problem in result.problems:
        typer.echo(f"  problem: {problem}")
