"""Every benchmark runs as a module from the repository root, with no ``sys.path`` edits.

The benchmarks share the test rig (``tests.support``); this keeps them importable as the
README's commands (`python -m bench.NAME`) run them, so a moved helper breaks a test here
rather than the next person's measurement.

All of them run, one after another, in one fresh interpreter started in the repository
root, each as ``runpy`` runs ``python -m NAME --help`` (``__main__``, the root first on
``sys.path``): a fresh interpreter per benchmark spent seconds importing the same
packages fourteen times.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if not p.stem.startswith("_"))
SCRIPTS = [f"bench.{name}" for name in BENCHMARKS] + ["examples.clinc.make_workflow"]


def test_the_benchmarks_are_found() -> None:
    assert "engine_throughput" in BENCHMARKS and "ack_latency" in BENCHMARKS


# ``python -m module --help`` for each module named on the command line; prints, as JSON,
# each one's exit code, stdout and stderr.
AS_MODULES = """
import contextlib, io, json, runpy, sys, traceback
results = {}
for module in sys.argv[1:]:
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.argv = [module, "--help"]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    except BaseException:
        err.write(traceback.format_exc())
        code = 1
    results[module] = [code, out.getvalue(), err.getvalue()]
sys.__stdout__.write(json.dumps(results))
"""


@pytest.fixture(scope="module")
def helped() -> dict[str, list[object]]:
    """Each script's (exit code, stdout, stderr) after ``--help``."""
    done = subprocess.run(
        [sys.executable, "-c", AS_MODULES, *SCRIPTS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results: dict[str, list[object]] = json.loads(done.stdout)
    return results


@pytest.mark.parametrize("module", SCRIPTS)
def test_runs_as_a_module_from_the_repository_root(
    module: str, helped: dict[str, list[object]]
) -> None:
    returncode, stdout, stderr = helped[module]
    assert returncode == 0, str(stderr)[-2000:]
    assert "usage:" in str(stdout)


def test_no_benchmark_edits_sys_path() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in [*(ROOT / "bench").glob("*.py"), *(ROOT / "examples").rglob("*.py")]
        if "sys.path" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
