"""Hot reload: edited workflow files become new versions without a restart.

``DefinitionWatcher`` polls the workflows folder's file stamps (mtime, size) every
``poll_seconds`` (watchfiles is not a dependency; a stat of a few dozen files every
2 s costs nothing) and reloads at once when asked (``SIGHUP`` in ``serve``,
``worker`` and ``demo``). A valid file becomes its workflow's new version for new
runs; runs already started keep theirs (``workflows/versions.py``). A file that no
longer loads keeps its previous version live and is reported in one log line with
its file:line, once per distinct error.

The live mapping is replaced in place: the engine, the listeners, the webhook
receiver and the start policies all hold that same dict.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from workflows.language.workflow import Workflow
from workflows.loader import CheckContext, DefinitionError, LoadResult, load_folder
from workflows.ports import Clock
from workflows.store import is_database_outage
from workflows.versions import SHORT, WorkflowVersions, digest_of

log = logging.getLogger(__name__)

Stamps = dict[str, tuple[int, int]]


@dataclass
class DefinitionWatcher:
    folder: Path
    check: CheckContext
    live: dict[str, Workflow]
    versions: WorkflowVersions
    clock: Clock
    files: dict[str, str]
    """File -> the workflow it defined when last loaded."""
    on_change: Callable[[], Awaitable[None]] | None = None
    """What derives from the definitions and must follow them (webhook keys, channels)."""
    prepare: Callable[[dict[str, Workflow]], Awaitable[None]] | None = None
    """Run on what a reload loaded before it goes live (names -> user ids, bot/people.py)."""
    poll_seconds: float = 2.0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _stamps: Stamps = field(default_factory=dict)
    _reported: dict[str, str] = field(default_factory=dict)

    def seen(self, errors: list[DefinitionError]) -> None:
        """Errors already logged at start-up: a reload reports only new ones."""
        self._reported = {error.file: str(error) for error in errors}

    def request_reload(self) -> None:
        """Reload now (the SIGHUP handler; safe to call from the event loop's thread)."""
        self._wake.set()

    async def run(self) -> None:
        self._stamps = self._stamp()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            asked, stamps = self._wake.is_set(), self._stamp()
            self._wake.clear()
            if not asked and stamps == self._stamps:
                continue
            self._stamps = stamps
            try:
                await self.reload()
            except Exception as exc:  # the watcher outlives a bad moment; next change retries
                if not is_database_outage(exc):
                    log.exception("workflow reload failed")
                else:
                    log.warning("workflow reload postponed: database unreachable")
                self._stamps = {}

    def _stamp(self) -> Stamps:
        stamps: Stamps = {}
        for path in self.folder.glob("*.y*ml"):
            with contextlib.suppress(OSError):  # deleted between glob and stat
                stat = path.stat()
                stamps[str(path)] = (stat.st_mtime_ns, stat.st_size)
        return stamps

    async def reload(self) -> list[str]:
        """Load the folder again; returns ``name@digest`` of each new or changed workflow."""
        loaded = await asyncio.to_thread(load_folder, self.folder, self.check)
        if self.prepare is not None:
            await self.prepare(loaded.workflows)
        kept = self._keep_previous(loaded)
        merged = loaded.workflows | {name: self.live[name] for name in kept.values()}
        # Stored before any run can start on them: the engine finds every pinned version.
        await self.versions.record(merged, self.clock.now())
        changed = [
            f"{name}@{digest_of(workflow)[:SHORT]}"
            for name, workflow in merged.items()
            if name not in self.live or digest_of(self.live[name]) != digest_of(workflow)
        ]
        removed = sorted(set(self.live) - set(merged))
        self.live.clear()
        self.live.update(merged)
        self.files = loaded.files | kept
        if self.on_change is not None:
            await self.on_change()
        if changed or removed:
            log.info(
                "workflows reloaded: new versions %s; removed %s",
                ", ".join(changed) or "none",
                ", ".join(removed) or "none",
            )
        return changed

    def _keep_previous(self, loaded: LoadResult) -> dict[str, str]:
        """Files that no longer load: their previous workflow stays live (file -> name)."""
        by_file: dict[str, list[DefinitionError]] = {}
        for error in loaded.errors:
            by_file.setdefault(error.file, []).append(error)
        kept: dict[str, str] = {}
        for file, errors in by_file.items():
            name = self.files.get(file)
            keeps = name is not None and name in self.live and name not in loaded.workflows
            if keeps and name is not None:
                kept[file] = name
            line = str(errors[0]) + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else "")
            if self._reported.get(file) != line:
                self._reported[file] = line
                verdict = f"the previous version of {name!r} stays live" if keeps else "skipped"
                log.warning("workflow file not reloaded, %s: %s", verdict, line)
        self._reported = {f: line for f, line in self._reported.items() if f in by_file}
        return kept


__all__ = ["DefinitionWatcher"]
