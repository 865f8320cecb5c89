"""Malformed workflow definitions: one clear error each, naming the file, the line and the field.

Each bad file sits beside a good one: the good one always loads. ``switchboard
check`` (the real command, as a subprocess) prints ``file:line: field: message``
and exits 1 (and, in-process through the CLI's entry point, 0 on a clean folder);
``switchboard schema`` is a JSON Schema that accepts a good definition and rejects
a bad one. And the Alembic migrations build exactly the
schema ``workflows/tables.py`` declares, on both backends.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from bot.settings import BUNDLED_TEMPLATES
from tests.support.cli import Ran, switchboard, switchboard_process
from tests.support.stores import Database
from workflows.loader import CheckContext, load_folder
from workflows.tables import Base

GOOD = """\
name: good
title: A good one
triggers:
  - command: good
  - schedule: {cron: "0 9 * * MON-FRI", timezone: Europe/London}
steps:
  - id: fetch
    http: {connection: erp, method: POST, path: /ledger, json: {po: "{{ input.text }}"}}
    retry: {attempts: 3}
  - id: calc
    set: {amount: "{{ steps.fetch.data.amount }}"}
  - id: tell
    post: {template: message, data: {text: "{{ steps.calc.amount }}"}}
"""

# name -> (source, line, field, message fragment)
BAD: dict[str, tuple[str, int, str, str]] = {
    "bad_yaml": (
        "name: bad-yaml\nsteps:\n  - id: a\n    set: {x: 1\n  - id: b\n",
        5,
        "",
        "bad YAML",
    ),
    "unknown_kind": (
        "name: unknown-kind\nsteps:\n  - id: a\n    set: {x: 1}\n"
        "  - id: b\n    teleport: {to: mars}\n",
        5,
        "steps[1]",
        "a step needs exactly one kind key",
    ),
    "dangling_ref": (
        "name: dangling\nsteps:\n  - id: a\n    set: {x: 1}\n"
        '  - id: b\n    set:\n      y: "{{ steps.nope.value }}"\n',
        7,
        "steps[1].set.y",
        "steps.nope is not an earlier step",
    ),
    "goto_unknown": (
        "name: bad-goto\nsteps:\n  - id: a\n    set: {x: 1}\n    goto: nowhere\n"
        "  - id: b\n    set: {y: 2}\n",
        5,
        "steps[0].goto",
        "jumps to unknown step 'nowhere'",
    ),
    "bad_cron": (
        "name: bad-cron\ntriggers:\n  - command: cron\n  - schedule:\n"
        '      cron: "61 * * * *"\nsteps:\n  - id: a\n    set: {x: 1}\n',
        4,
        "triggers[1].schedule",
        "bad cron '61 * * * *'",
    ),
    "broken_expression": (
        'name: broken-expr\nsteps:\n  - id: a\n    set: {x: 1}\n    when: "{{ steps. }}"\n',
        5,
        "steps[0].when",
        "bad expression",
    ),
    "missing_template": (
        "name: missing-template\nsteps:\n  - id: a\n    set: {x: 1}\n"
        "  - id: b\n    post: {template: no_such_template}\n",
        6,
        "steps[1].post.template",
        "no template no_such_template.json.j2",
    ),
    "undeclared_connection": (
        "name: undeclared\nsteps:\n  - id: a\n    set: {x: 1}\n"
        "  - id: b\n    http: {connection: crm, path: /x}\n",
        6,
        "steps[1].http.connection",
        "connection 'crm' is not declared",
    ),
    "duplicate_key": (
        "name: dup\nsteps:\n  - id: a\n    set: {x: 1}\n    set: {x: 2}\n",
        5,
        "",
        "duplicate key 'set' (first at line 4)",
    ),
    "yaml_alias": (
        "name: alias\nsteps:\n  - id: a\n    set: &s {x: 1}\n  - id: b\n    set: *s\n",
        4,
        "",
        "aliases and anchors are not allowed (&s)",
    ),
    "reserved_step_id": (
        "name: reserved\nsteps:\n  - id: items\n    set: {x: 1}\n",
        3,
        "steps[0].id",
        "step id 'items' is reserved",
    ),
}

# Once known gaps (an unknown step field reported at line 1; dunder access loading fine).
FORMER_GAPS: dict[str, tuple[str, int, str, str, str]] = {
    "unknown_field": (
        "name: unknown-field\nsteps:\n  - id: a\n    set: {x: 1}\n    retries: 3\n",
        5,
        "steps[0].retries",
        "unknown field",
        "an unknown step field is reported at line 1 as steps[0].set.retries: the loader "
        "follows pydantic's union tag 'set' into the step's own `set` mapping",
    ),
    "unsafe_expression": (
        "name: unsafe\nsteps:\n  - id: a\n    set:\n      y: \"{{ ''.__class__.__mro__ }}\"\n",
        5,
        "steps[0].set.y",
        "unsafe",
        "an expression reaching for dunder attributes loads fine; only the sandbox stops it "
        "at run time",
    ),
}


def check_context() -> CheckContext:
    return CheckContext(templates_dir=BUNDLED_TEMPLATES, connections=frozenset({"erp"}))


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(source)
    return path


def assert_one_error(folder: Path, name: str, line: int, field: str, fragment: str) -> None:
    write(folder, "good", GOOD)
    result = load_folder(folder, check_context())
    assert list(result.workflows) == ["good"], "the good definition loads beside a bad one"
    assert len(result.errors) == 1, [str(e) for e in result.errors]
    [error] = result.errors
    assert error.file == str(folder / f"{name}.yaml")
    assert (error.line, error.field) == (line, field), str(error)
    assert fragment in error.message, str(error)


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_definition_gives_one_error_at_its_line(tmp_path: Path, name: str) -> None:
    source, line, field, fragment = BAD[name]
    write(tmp_path, name, source)
    assert_one_error(tmp_path, name, line, field, fragment)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, id=n) for n in FORMER_GAPS],
)
def test_known_gaps_in_definition_errors(tmp_path: Path, name: str) -> None:
    source, line, field, fragment, _why = FORMER_GAPS[name]
    write(tmp_path, name, source)
    assert_one_error(tmp_path, name, line, field, fragment)


def test_all_bad_files_together_still_load_the_good_one(tmp_path: Path) -> None:
    for name, (source, *_rest) in BAD.items():
        write(tmp_path, name, source)
    write(tmp_path, "good", GOOD)
    result = load_folder(tmp_path, check_context())
    assert list(result.workflows) == ["good"]
    where = sorted((Path(e.file).stem, e.line) for e in result.errors)
    assert where == sorted((name, line) for name, (_s, line, _f, _m) in BAD.items())


def _env(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SWITCHBOARD_WORKFLOWS": str(folder),
        "DATABASE_URL": f"sqlite+aiosqlite:///{folder}/unused.db",
    }


def _cli(*args: str, folder: Path) -> Ran:
    return switchboard(list(args), cwd=folder, env=_env(folder))


def _executable(*args: str, folder: Path) -> Ran:
    return switchboard_process(list(args), cwd=folder, env=_env(folder))


@pytest.mark.slow
def test_switchboard_check_exits_1_and_prints_file_line_field_message(tmp_path: Path) -> None:
    for name, (source, *_rest) in BAD.items():
        write(tmp_path, name, source)
    write(tmp_path, "good", GOOD)
    (tmp_path / "connections.yaml").write_text(
        "connections:\n  erp: {type: http, base_url: 'https://erp.example.com'}\n"
    )
    result = _executable("check", folder=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name, (_source, line, field, fragment) in BAD.items():
        prefix = f"{tmp_path / name}.yaml:{line}: " + (f"{field}: " if field else "")
        assert any(out.startswith(prefix) and fragment in out for out in lines), (
            prefix,
            result.stdout,
        )
    assert lines[-1] == f"1 workflow ok, {len(BAD)} errors"
    assert "Traceback" not in result.stdout + result.stderr

    # Clean folder: exit 0.
    for name in BAD:
        (tmp_path / f"{name}.yaml").unlink()
    ok = _cli("check", folder=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines()[-1] == "1 workflow ok, 0 errors"


@pytest.mark.slow
def test_switchboard_schema_validates_good_and_rejects_bad(tmp_path: Path) -> None:
    result = _cli("schema", folder=tmp_path)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    assert list(validator.iter_errors(yaml.safe_load(GOOD))) == []
    for name in ("unknown_kind",):
        assert list(validator.iter_errors(yaml.safe_load(BAD[name][0]))), name
    bad_field: dict[str, Any] = yaml.safe_load(GOOD)
    bad_field["steps"][0]["retries"] = 3
    assert list(validator.iter_errors(bad_field)), "an unknown field is rejected"
    no_steps: dict[str, Any] = {"name": "empty", "steps": []}
    assert list(validator.iter_errors(no_steps)), "steps must not be empty"


async def test_migrations_build_exactly_the_declared_schema(database: Database) -> None:
    store = database.store()
    try:

        def diff(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))

        async with store.engine.connect() as conn:
            differences = await conn.run_sync(diff)
    finally:
        await store.dispose()
    assert differences == [], f"tables.py and the migrations disagree: {differences}"
