"""Workflow versions: every run finishes on the definition it started with.

A version is the workflow's validated model dumped to JSON with sorted keys; its
id is the sha256 of that text. The model, not the file text, is hashed because
the model is what runs: a comment or a re-indented line is not a new version,
defaults are pinned with it (a code default that changes later does not change
a waiting run), and the stored JSON validates back to the very same model.

``workflow_versions`` holds each version once (written when a definition is
loaded: start-up and every reload) and ``runs.workflow_version`` names the
run's (written by ``runs.start_run``). The engine asks ``WorkflowVersions`` for
a run's workflow by (name, digest): the live definition when it is that
version, else the stored one, validated once and cached. Anchors: n8n stores
the workflow with each execution; Temporal pins a workflow's code version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from workflows.language.workflow import Workflow
from workflows.store import Store
from workflows.tables import RunRow, WorkflowVersionRow

SHORT = 12
"""Characters of a digest shown to people (threads, audit, ``switchboard workflows``)."""
_ACTIVE = ("running", "waiting")


class VersionUnavailable(Exception):
    """The run's pinned definition cannot be executed; the message says why, in one line."""


def canonical(workflow: Workflow) -> dict[str, Any]:
    return workflow.model_dump(mode="json", by_alias=True)


_digests: dict[int, tuple[Workflow, str]] = {}
"""Digest per loaded model (by identity; the model is kept so its id is not reused):
``start_run`` sits on the ack path and must not dump and hash a definition per start."""


def digest_of(workflow: Workflow) -> str:
    known = _digests.get(id(workflow))
    if known is not None and known[0] is workflow:
        return known[1]
    text = json.dumps(canonical(workflow), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()
    if len(_digests) > 4096:  # models of reloads long gone; recomputing is cheap enough
        _digests.clear()
    _digests[id(workflow)] = (workflow, digest)
    return digest


@dataclass
class WorkflowVersions:
    """Run workflows by (name, digest): live ones as loaded, old ones from the table."""

    store: Store
    live: Mapping[str, Workflow]
    """The definitions new runs start on; a reload replaces this mapping's contents."""
    _stored: dict[tuple[str, str], Workflow] = field(default_factory=dict)

    async def record(self, workflows: Mapping[str, Workflow], now: datetime) -> None:
        """Store each definition not stored yet (start-up, reload), before any run of it."""
        wanted = {(name, digest_of(workflow)): workflow for name, workflow in workflows.items()}
        if not wanted:
            return
        async with self.store.read() as session:
            rows = await session.execute(
                select(WorkflowVersionRow.workflow, WorkflowVersionRow.digest).where(
                    WorkflowVersionRow.workflow.in_({name for name, _ in wanted})
                )
            )
            stored = {(row.workflow, row.digest) for row in rows}
        for (name, digest), workflow in wanted.items():
            if (name, digest) in stored:
                continue
            row = WorkflowVersionRow(
                workflow=name, digest=digest, definition=canonical(workflow), first_seen_at=now
            )
            try:
                async with self.store.transaction() as session:
                    session.add(row)
            except IntegrityError:
                pass  # another process loaded the same file at the same moment: same row

    async def for_run(self, name: str, digest: str | None) -> Workflow:
        """The definition a run of ``name`` pinned (``digest``; None: before versioning)."""
        live = self.live.get(name)
        if live is not None and (digest is None or digest_of(live) == digest):
            return live
        if digest is None:
            raise VersionUnavailable(f"workflow {name!r} is no longer defined")
        cached = self._stored.get((name, digest))
        if cached is not None:
            return cached
        async with self.store.read() as session:
            row = await session.get(WorkflowVersionRow, (name, digest))
        if row is None:
            raise VersionUnavailable(f"version {digest[:SHORT]} of workflow {name!r} is not stored")
        try:
            workflow = Workflow.model_validate(row.definition)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise VersionUnavailable(
                f"version {digest[:SHORT]} of workflow {name!r} is no longer valid "
                f"in this release: {where}: {first['msg']}"
            ) from None
        self._stored[(name, digest)] = workflow
        return workflow


@dataclass(frozen=True)
class VersionSummary:
    workflow: str
    digest: str
    first_seen_at: datetime
    live_runs: int
    """Runs pinned to this version still running or waiting."""


async def version_summaries(store: Store) -> list[VersionSummary]:
    """Every stored version, newest first per workflow, with its unfinished runs."""
    live = (
        select(RunRow.workflow, RunRow.workflow_version, func.count().label("runs"))
        .where(RunRow.status.in_(_ACTIVE))
        .group_by(RunRow.workflow, RunRow.workflow_version)
        .subquery()
    )
    query = (
        select(
            WorkflowVersionRow.workflow,
            WorkflowVersionRow.digest,
            WorkflowVersionRow.first_seen_at,
            func.coalesce(live.c.runs, 0),
        )
        .outerjoin(
            live,
            (live.c.workflow == WorkflowVersionRow.workflow)
            & (live.c.workflow_version == WorkflowVersionRow.digest),
        )
        .order_by(WorkflowVersionRow.workflow, WorkflowVersionRow.first_seen_at.desc())
    )
    async with store.read() as session:
        rows = (await session.execute(query)).all()
    return [VersionSummary(name, digest, seen, int(runs)) for name, digest, seen, runs in rows]


__all__ = [
    "SHORT",
    "VersionSummary",
    "VersionUnavailable",
    "WorkflowVersions",
    "canonical",
    "digest_of",
    "version_summaries",
]
