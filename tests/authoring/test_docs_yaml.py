"""Docs are tests: every ```yaml block in README.md, docs/*.md and connectors/README.md is
checked like ``switchboard check`` checks a file (how a block's kind is told: docs_yaml.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.authoring.docs_yaml import ROOT, Block, doc_files, problems_of, yaml_blocks

BLOCKS = [block for path in doc_files() for block in yaml_blocks(path)]


def test_the_docs_have_yaml_blocks_to_check() -> None:
    files = {block.file.name for block in BLOCKS}
    assert len(BLOCKS) >= 3 and {"README.md"} <= files


@pytest.mark.parametrize("block", BLOCKS, ids=[block.where for block in BLOCKS])
def test_every_yaml_block_in_the_docs_checks(block: Block, tmp_path: Path) -> None:
    assert problems_of(block, tmp_path) == [], block.where


def test_the_old_readme_example_is_caught(tmp_path: Path) -> None:
    """The check is not vacuous: the example as it was (``purpose: str``) is reported."""
    old = subprocess.run(
        ["git", "show", "6c594f2:README.md"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    [example] = [b for b in yaml_blocks(ROOT / "README.md", old) if "name: expense" in b.text]
    [problem] = problems_of(example, tmp_path)
    assert "purpose is a str field without pattern:" in problem


def test_a_block_of_unknown_shape_and_a_wrong_fragment_fail(tmp_path: Path) -> None:
    readme = ROOT / "README.md"
    unknown = Block(readme, 1, "colour: blue\n")
    assert problems_of(unknown, tmp_path) == [
        "not a workflow or a known part of one: add '# check: <kind>'"
    ]
    wrong = Block(readme, 2, "triggers:\n  - command: {channel: 3}\n")
    assert problems_of(wrong, tmp_path) != []
    bad_connection = Block(readme, 3, "connections:\n  erp: {type: http}\n")
    assert problems_of(bad_connection, tmp_path) != []
    skipped = Block(readme, 4, "# check: skip\ncolour: blue\n")
    assert problems_of(skipped, tmp_path) == []
