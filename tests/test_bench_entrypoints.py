"""Every benchmark runs as a module from the repository root, with no ``sys.path`` edits.

The benchmarks share the test rig (``tests.support``); this keeps them importable as the
README's commands (`python -m bench.NAME`) run them, so a moved helper breaks a test here
rather than the next person's measurement.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if not p.stem.startswith("_"))
SCRIPTS = [f"bench.{name}" for name in BENCHMARKS] + ["examples.clinc.make_workflow"]


def test_the_benchmarks_are_found() -> None:
    assert "engine_throughput" in BENCHMARKS and "ack_latency" in BENCHMARKS


@pytest.mark.parametrize("module", SCRIPTS)
def test_runs_as_a_module_from_the_repository_root(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout


def test_no_benchmark_edits_sys_path() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in [*(ROOT / "bench").glob("*.py"), *(ROOT / "examples").rglob("*.py")]
        if "sys.path" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
