"""``switchboard test``: a workflow's own tests, and one request run ad hoc, with no Slack.

The bundled workflows' ``tests:`` run as a subprocess, exactly as a team's CI would run
theirs; the other cases drive the same command in-process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from tests.authoring.docs_yaml import ROOT
from tests.authoring.test_readme_example import readme_example

SWITCHBOARD = Path(sys.executable).with_name("switchboard")


def test_the_bundled_workflows_pass_their_own_tests() -> None:
    done = subprocess.run(
        [str(SWITCHBOARD), "test", str(ROOT / "workflows" / "examples")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 failed" in done.stdout and "Traceback" not in done.stderr
    assert "hello: greets the name it is given: ok" in done.stdout


def _readme_folder(tmp_path: Path) -> Path:
    (tmp_path / "expense.yaml").write_text(readme_example(), encoding="utf-8")
    (tmp_path / "erp.yaml").write_text(
        "connections:\n  erp: [{method: POST, path: /expenses, status: 201, json: {id: EXP-1}}]\n"
    )
    return tmp_path


def test_an_adhoc_run_prints_path_messages_and_calls(tmp_path: Path) -> None:
    folder = _readme_folder(tmp_path)
    args = ["test", str(folder / "expense.yaml"), "--text", "640 EUR team dinner", "--approve"]
    result = CliRunner().invoke(app, [*args, "--fixtures", str(folder / "erp.yaml")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "path: fields → review → book → done" in out
    assert "Booked 640.00 EUR for team dinner." in out
    assert "posted in #finance-approvals: Expense: 640 EUR team dinner" in out
    assert "waiting for approval in #finance-approvals from" in out
    assert "&lt;#" not in out, "a channel named as written is shown as written"
    sent = '{"amount": {"amount": 640.0, "currency": "EUR"}}'
    assert f"called erp: POST /expenses {sent} -> 201" in out
    assert "1 test, 1 passed, 0 failed" in out


def test_a_rejected_expense_is_not_booked(tmp_path: Path) -> None:
    folder = _readme_folder(tmp_path)
    args = ["test", str(folder / "expense.yaml"), "--text", "640 EUR team dinner", "--reject"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "path: fields → review\n" in result.output
    assert "called erp" not in result.output


def test_the_requester_cannot_approve_their_own_expense(tmp_path: Path) -> None:
    """``--as`` the only approver: four-eyes leaves no one, so the gate closes unbooked."""
    folder = _readme_folder(tmp_path)
    args = ["test", str(folder / "expense.yaml"), "--text", "640 EUR dinner", "--approve"]
    result = CliRunner().invoke(app, [*args, "--as", "U0APPROVER"])
    assert result.exit_code == 0, result.output
    assert "<@U0APPROVER> started expense" in result.output
    assert "No one but the requester can approve this request" in result.output
    assert "review: timed out:" in result.output and "called erp" not in result.output


def test_a_test_that_does_not_hold_fails_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "greet.yaml").write_text(
        textwrap.dedent(
            """\
            name: greet
            steps:
              - id: hi
                post: {text: "Hi {{ input.text }}"}
            tests:
              - name: says hi
                input: {text: Ada}
                expect: {path: [hi], posted: ["Hi Ada"]}
              - name: expects what does not happen
                input: {text: Ada}
                expect: {path: [hi, bye], outputs: {hi.text: Hello}, posted: ["Bye"]}
            """
        )
    )
    result = CliRunner().invoke(app, ["test", str(tmp_path)])
    assert result.exit_code == 1
    out = result.output
    assert "greet: says hi: ok" in out
    assert "problem: expected path hi → bye, got hi" in out
    assert "problem: hi.text: no such output" in out
    assert "problem: nothing posted contains 'Bye'" in out
    assert "2 tests, 1 passed, 1 failed" in out


def test_bad_input_gets_a_short_message_and_no_traceback(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["test", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "no such workflow file" in missing.output
    folder = _readme_folder(tmp_path)
    (folder / "bad.yaml").write_text("ai: [{guess: x}]\n")
    args = ["test", str(folder / "expense.yaml"), "--text", "x", "--fixtures"]
    bad = runner.invoke(app, [*args, str(folder / "bad.yaml")])
    assert bad.exit_code == 1 and "not a fixtures file" in bad.output
    assert bad.exception is None or isinstance(bad.exception, SystemExit)
    (folder / "broken.yaml").write_text("name: broken\nsteps: []\n")
    broken = runner.invoke(app, ["test", str(folder / "broken.yaml")])
    assert broken.exit_code == 1 and "broken.yaml:" in broken.output
    none = runner.invoke(app, ["test", str(folder / "expense.yaml")])
    assert none.exit_code == 1 and "no tests:" in none.output


def test_the_readme_walkthrough_prints_what_the_readme_says(tmp_path: Path) -> None:
    """Check → test, as "Writing a workflow" tells it, quoting what each command prints."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    folder = tmp_path / "my-flows"
    folder.mkdir()
    (folder / "expense.yaml").write_text(readme_example(), encoding="utf-8")
    runner = CliRunner()
    undeclared = runner.invoke(app, ["check", str(folder)])
    problem = "steps[2].http.connection: connection 'erp' is not declared"
    assert undeclared.exit_code == 1 and problem in undeclared.output
    assert f"`my-flows/expense.yaml:24: {problem}`" in readme.replace("\n   ", " ")
    assert f"expense.yaml:24: {problem}" in undeclared.output
    (folder / "connections.yaml").write_text(
        "connections:\n  erp: {type: http, base_url: 'https://erp.internal/api'}\n"
    )
    declared = runner.invoke(app, ["check", str(folder)])
    assert declared.output.splitlines()[-1] == "1 workflow ok, 0 errors"
    assert "`1 workflow ok, 0 errors`" in readme
    tested = runner.invoke(
        app, ["test", str(folder / "expense.yaml"), "--text", "640 EUR team dinner", "--approve"]
    )
    assert tested.exit_code == 0, tested.output
    assert "path: fields → review → book → done" in tested.output
    assert "(`fields → review → book →\n   done`)" in readme
