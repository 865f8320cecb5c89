"""The sandbox's shape (issue 17): its own top-level package, in pieces small enough to read.

The import rules themselves are import-linter contracts (``make imports``); these
tests pin what a static import graph cannot: class and module sizes, and that the
product really starts without the sandbox importable.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import sandbox

SANDBOX = Path(sandbox.__file__).resolve().parent
ROOT = SANDBOX.parent
MAX_CLASS_METHODS = 25
MAX_MODULE_LINES = 450  # "~400": a module may run a screen past, not double


def _sandbox_modules() -> list[Path]:
    return sorted(SANDBOX.rglob("*.py"))


def _method_names(cls: ast.ClassDef) -> set[str]:
    """Distinct names defined in the class body (a property's getter and setter are one)."""
    return {
        node.name
        for node in cls.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name != "__init__"
    }


def test_no_sandbox_class_defines_more_than_25_methods() -> None:
    too_big = [
        f"{path.relative_to(ROOT)}:{node.name} has {len(_method_names(node))} methods"
        for path in _sandbox_modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and len(_method_names(node)) > MAX_CLASS_METHODS
    ]
    assert too_big == []


def test_no_sandbox_module_is_over_about_400_lines() -> None:
    too_long = [
        f"{path.relative_to(ROOT)} has {lines} lines"
        for path in _sandbox_modules()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert too_long == []


def test_the_emulator_facade_keeps_the_flat_api_tests_drive() -> None:
    from sandbox.slack import SlackEmulator

    for name in ("user_posts", "slash_command", "click", "submit_view", "messages", "wait_for"):
        assert callable(getattr(SlackEmulator, name)), name


# A finder that refuses every `sandbox` module: the product must import and build its
# CLI and server without it (only `switchboard demo` reaches for it, lazily).
_WITHOUT_SANDBOX = """
import sys

class NoSandbox:
    def find_spec(self, name, path=None, target=None):
        if name == "sandbox" or name.startswith("sandbox."):
            raise ImportError(f"the product imported {name}")
        return None

sys.meta_path.insert(0, NoSandbox())
import bot.cli, bot.server, bot.serve, bot.runtime, bot.app, workflows, connectors
from typer.testing import CliRunner
result = CliRunner().invoke(bot.cli.app, ["--help"])
assert result.exit_code == 0, result.output
assert "demo" in result.output, result.output
print(sorted(m for m in sys.modules if m.split(".")[0] == "sandbox"))
"""


def test_the_product_imports_and_lists_its_commands_without_the_sandbox() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_SANDBOX],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
