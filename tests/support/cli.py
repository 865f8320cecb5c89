"""Run ``switchboard`` commands as the tests do: as a real child process.

``switchboard`` and ``switchboard_process`` run the installed executable.
``switchboard_in_process`` runs ``bot.cli.main`` in this process with the argv, working
directory and *whole* environment a process would have had, stdout and stderr captured,
and the exit code taken from ``SystemExit`` as the interpreter reports it. It is fast
(no 1-2 s of imports) but swaps process-wide state, so only the test that checks the two
ways agree uses it (see ``switchboard``'s docstring for why).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from bot import cli
from bot.logs import UVICORN_LOGGERS

SWITCHBOARD = Path(sys.executable).parent / "switchboard"

_one_at_a_time = threading.Lock()  # cwd, environ and sys.std* belong to the whole process


@dataclass(frozen=True)
class Ran:
    """What a finished command left: its exit code and its two output streams."""

    returncode: int
    stdout: str
    stderr: str


def switchboard(args: list[str], *, cwd: Path, env: Mapping[str, str]) -> Ran:
    """``switchboard *args``, the way the tests run commands: as a real child process.

    In-process runs swap the whole process's environ and cwd while the command runs; a
    command still running in a thread after its test ended (a timeout, a cancel) then
    changed what every later test in that process saw (a fresh-clone CI run had 93
    failures from it). So commands run as processes; ``switchboard_in_process`` stays
    for the test that checks both ways agree.
    """
    return switchboard_process(args, cwd=cwd, env=env)


def switchboard_in_process(args: list[str], *, cwd: Path, env: Mapping[str, str]) -> Ran:
    """``switchboard *args`` in-process, as if started in ``cwd`` with exactly ``env``.

    Call it from a thread (``asyncio.to_thread``) in async tests: commands run their own
    event loop.
    """
    out, err = io.StringIO(), io.StringIO()
    with _one_at_a_time, _process_state(args, cwd, env, out, err):
        code = _exit_code(err)
    return Ran(code, out.getvalue(), err.getvalue())


def switchboard_process(args: list[str], *, cwd: Path, env: Mapping[str, str]) -> Ran:
    """``switchboard *args`` as a real child process of the installed executable."""
    done = subprocess.run(
        [str(SWITCHBOARD), *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def _exit_code(err: io.StringIO) -> int:
    try:
        cli.main()
    except SystemExit as exit_:
        code = exit_.code
        if code is None or isinstance(code, int):
            return code or 0
        err.write(f"{code}\n")  # sys.exit("text") prints the text and exits 1
        return 1
    except Exception:
        err.write(traceback.format_exc())
        return 1
    return 0


@contextlib.contextmanager
def _process_state(
    args: list[str], cwd: Path, env: Mapping[str, str], out: io.StringIO, err: io.StringIO
) -> Iterator[None]:
    """Argv, cwd, environ, std streams and logging as a process would start with; restored."""
    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    saved_logging = _logging_state()
    structlog_config = structlog.get_config()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.argv = [str(SWITCHBOARD), *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        _restore_logging(saved_logging)
        structlog.configure(**structlog_config)


_LoggingState = dict[str, tuple[list[logging.Handler], int, bool]]


def _logging_state() -> _LoggingState:
    loggers = [logging.getLogger(), *map(logging.getLogger, UVICORN_LOGGERS)]
    return {
        logger.name: (list(logger.handlers), logger.level, logger.propagate) for logger in loggers
    }


def _restore_logging(state: _LoggingState) -> None:
    for name, (handlers, level, propagate) in state.items():
        logger = logging.getLogger(None if name == "root" else name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        for handler in handlers:
            logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
