"""SECURITY.md's "Regression tests by finding" names tests that exist: the issue's closing
note cites that table, so a renamed or deleted test must fail here, not silently."""

from __future__ import annotations

import re

from bot.settings import PROJECT_ROOT

SECURITY = PROJECT_ROOT / "SECURITY.md"
_CODE = re.compile(r"`([^`]+)`")


def cited_tests() -> list[tuple[str, str]]:
    """(test file, test function) for every ``::name`` in the table, in order."""
    table = SECURITY.read_text(encoding="utf-8").split("## Regression tests by finding", 1)[1]
    cited: list[tuple[str, str]] = []
    for row in (line for line in table.splitlines() if line.startswith("| ")):
        current = ""
        for token in _CODE.findall(row):
            path, _, name = token.partition("::")
            if path.endswith(".py"):
                current = path if path.startswith("tests/") else f"tests/security/{path}"
            if name:
                assert current, f"{token} names no file: {row[:80]}"
                cited.append((current, name))
    return cited


def test_every_test_the_security_table_cites_exists() -> None:
    cited = cited_tests()
    assert len(cited) > 60, "the table was not parsed"
    missing = [
        f"{path}::{name}"
        for path, name in cited
        if not (PROJECT_ROOT / path).is_file()
        or not re.search(
            rf"^(async )?def {re.escape(name)}\(",
            (PROJECT_ROOT / path).read_text(encoding="utf-8"),
            re.MULTILINE,
        )
    ]
    assert not missing, missing


def test_every_security_test_module_is_cited() -> None:
    cited = {path for path, _name in cited_tests()}
    modules = {
        f"tests/security/{path.name}"
        for path in (PROJECT_ROOT / "tests" / "security").glob("test_*.py")
        if path.name != "test_security_doc.py"
    }
    assert modules <= cited, sorted(modules - cited)
