"""The database schema: requests, runs, jobs, outbound messages and the audit trail.

A run is a row; each step execution is a job row with a due time, a lease and
an attempt count; nothing waits in memory. Alembic migrations in
``migrations/`` create these tables; tests compare the two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class RequestRow(Base):
    """What arrived: a slash command, a message, a webhook, a schedule fire."""

    __tablename__ = "requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    team_id: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # The console's list: newest first, per filter, keyset-paginated (migration 0010).
        Index("ix_runs_newest", "created_at", "id"),
        Index("ix_runs_workflow_newest", "workflow", "created_at", "id"),
        Index("ix_runs_status_newest", "status", "created_at", "id"),
        Index("ix_runs_requester_newest", "requester", "created_at", "id"),
        Index("ix_runs_team_newest", "team_id", "created_at", "id"),  # migration 0012
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workflow: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    request_id: Mapped[str | None] = mapped_column(String(32))
    requester: Mapped[str | None] = mapped_column(String(32))
    team_id: Mapped[str | None] = mapped_column(String(32))
    """The Slack workspace the run belongs to (its request's); its chat uses that workspace's
    token and only that workspace's people see it. NULL: no workspace (webhook, schedule)."""
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    root_ts: Mapped[str | None] = mapped_column(String(32))
    current_step: Mapped[str | None] = mapped_column(String(128))
    context: Mapped[dict[str, Any]] = mapped_column(JsonType)
    error: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=0)
    """Optimistic concurrency counter of the row; the definition it runs is ``workflow_version``."""
    workflow_version: Mapped[str | None] = mapped_column(String(64))
    """Digest of the definition the run started with (``workflow_versions``); it finishes on
    that one across reloads and redeploys. NULL for runs older than versioning: the live one."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When retention or ``forget`` removed the run's texts (``workflows.retention``)."""


class JobRow(Base):
    """One step execution, due at ``due_at``; ``attempt`` counts claims, ``failures`` errors."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claim", "status", "due_at"),
        Index("ix_jobs_run", "run_id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str] = mapped_column(String(32))
    step_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default="step")
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)

    @classmethod
    def queued(
        cls,
        run_id: str,
        step_id: str,
        kind: str,
        due_at: datetime,
        now: datetime,
        payload: dict[str, Any] | None = None,
    ) -> JobRow:
        """A job waiting in the queue: the one way every part of the engine enqueues work."""
        return cls(
            run_id=run_id,
            step_id=step_id,
            kind=kind,
            payload=payload or {},
            status="queued",
            due_at=due_at,
            attempt=0,
            failures=0,
            created_at=now,
        )


class OutboundMessageRow(Base):
    """A chat message we sent, keyed by (run, step, purpose) so a retry updates it."""

    __tablename__ = "outbound_messages"
    __table_args__ = (UniqueConstraint("run_id", "step_id", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(32))
    step_id: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditRow(Base):
    """Append-only, hash-chained: ``hash = sha256(prev_hash + canonical(record))``.

    A record is written with its transaction and sealed into the chain shortly after
    (``chain_seq``, ``prev_hash``, ``hash``): see ``workflows.audit``.
    """

    __tablename__ = "audit_records"
    __table_args__ = (
        Index(
            "ix_audit_records_unsealed",
            "seq",
            postgresql_where=text("chain_seq IS NULL"),
            sqlite_where=text("chain_seq IS NULL"),
        ),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str | None] = mapped_column(String(32), index=True)
    step_id: Mapped[str | None] = mapped_column(String(128))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    chain_seq: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), unique=True
    )
    """Position in the chain, given when sealed (commit order may differ from ``seq``)."""
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64), unique=True)


class GateRow(Base):
    """An approval gate: one per (run, approve step); its outcome is written exactly once."""

    __tablename__ = "approval_gates"
    __table_args__ = (
        UniqueConstraint("run_id", "step_id"),
        # A non-admin's console list: the gates naming them (migration 0012; GIN on
        # PostgreSQL, a plain index SQLite does not use, kept so both schemas match).
        Index(
            "ix_approval_gates_approvers",
            "approvers",
            postgresql_using="gin",
            postgresql_ops={"approvers": "jsonb_path_ops"},
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32), index=True)
    step_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), index=True)
    """open | approved | rejected | <custom outcome> | timed_out"""
    approvers: Mapped[list[str]] = mapped_column(JsonType)
    """User IDs who may decide now (resolved from groups/channels when the card was posted)."""
    min_approvals: Mapped[int] = mapped_column(Integer, default=1)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    requester: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    timeout_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DecisionRow(Base):
    """One person's decision on a gate; the unique key makes double clicks one decision."""

    __tablename__ = "approval_decisions"
    __table_args__ = (UniqueConstraint("gate_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gate_id: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AssignmentRow(Base):
    """A routed request: who owns it, who claimed it, and its SLA clock."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("run_id", "step_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32), index=True)
    step_id: Mapped[str] = mapped_column(String(128))
    label: Mapped[str | None] = mapped_column(String(128))
    predicted_label: Mapped[str | None] = mapped_column(String(128))
    confidence: Mapped[float | None] = mapped_column()
    owner_kind: Mapped[str] = mapped_column(String(16))
    """channel | user | usergroup | triage"""
    owner_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    """open | claimed | closed | shadow"""
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    channel_id: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ExampleRow(Base):
    """A labelled example from people's corrections (reassign, triage pick, shadow comparison)."""

    __tablename__ = "labelled_examples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow: Mapped[str] = mapped_column(String(128), index=True)
    step_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(128))
    predicted: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(32))
    approved: Mapped[bool] = mapped_column(default=False)
    run_id: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ThresholdStateRow(Base):
    """A threshold trigger's hysteresis: armed until it fires, re-armed once the value clears.

    ``generation`` counts re-arms; a fire's dedupe key carries it, so every process may check
    and one run starts per crossing. ``checked_at`` lets processes share one check per interval.
    """

    __tablename__ = "threshold_states"

    workflow: Mapped[str] = mapped_column(String(128), primary_key=True)
    trigger_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    armed: Mapped[bool] = mapped_column(default=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    last_value: Mapped[float | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_run_id: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SlotRow(Base):
    """One unit of a cross-process concurrency limit (``workflows.limits``), leased."""

    __tablename__ = "concurrency_slots"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holder_owner: Mapped[str | None] = mapped_column(String(64), index=True)
    holder_job: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RefusalRow(Base):
    """One kind of refusal of one person on one gate: when last audited, how many since.

    Bounds the audit trail under a hammered button (``workflows.refusals``); ``kind``
    is a digest of the refusal's reason, so a new reason is always recorded.
    """

    __tablename__ = "approval_refusals"

    gate_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    audited_at: Mapped[datetime] = mapped_column(UTCDateTime())
    suppressed: Mapped[int] = mapped_column(Integer, default=0)
    """Refusals since ``audited_at`` not written to the trail (the next record carries it)."""


class WorkflowVersionRow(Base):
    """One definition of a workflow as it was loaded, stored once per content digest.

    Runs pin a version (``runs.workflow_version``) so an edit never changes a run midway
    (``workflows.versions``); rows are never updated, so any process may insert one.
    """

    __tablename__ = "workflow_versions"

    workflow: Mapped[str] = mapped_column(String(128), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JsonType)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SubRunRow(Base):
    """A child run started by a ``workflow`` step, and the parent step waiting for it."""

    __tablename__ = "sub_runs"

    child_run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    parent_run_id: Mapped[str] = mapped_column(String(32), index=True)
    parent_step: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FunctionRunRow(Base):
    """A Workflow Builder step (a ``function_executed`` event) and the run it started.

    Written with the run (``StartRequest.function``); the run's ending transaction sets
    ``ending`` (``workflows/lifecycle.py``); the ``ended`` job completes the execution once
    (``workflows/function_runs.py``), then forgets the execution's token."""

    __tablename__ = "function_runs"

    execution_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32), unique=True)
    callback_id: Mapped[str] = mapped_column(String(64))
    team_id: Mapped[str | None] = mapped_column(String(32))
    token: Mapped[str | None] = mapped_column(Text)
    """The execution's ``bot_access_token`` until it is completed; then NULL."""
    ending: Mapped[str | None] = mapped_column(String(16))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """While one ``ended`` job is calling Slack: nobody else calls until then."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    completion: Mapped[str | None] = mapped_column(String(16))
    """``success`` | ``error`` (what we told Slack) | ``gone`` (Slack had it already)."""
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InstallationRow(Base):
    """One Slack workspace (or Enterprise Grid org) the app is installed in: the latest
    install's data as slack_sdk's ``Installation`` fields (``bot/installations.py``)."""

    __tablename__ = "slack_installations"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    """``{enterprise_id or '-'}:{team_id or '-'}``."""
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    team_id: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JsonType)
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OAuthStateRow(Base):
    """An OAuth ``state`` handed out by ``/slack/install``, consumed once by the redirect."""

    __tablename__ = "slack_oauth_states"

    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
