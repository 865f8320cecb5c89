"""function runs: Workflow Builder steps and the runs they started

Revision ID: 0012_wfb_function_runs
Revises: 0011_console_indexes

A ``function_executed`` event (a Switchboard step in a Workflow Builder workflow)
starts a run; ``function_runs`` keeps the execution id and its token beside it, the
run's ending (set in its ending transaction) and whether Slack was told
(``functions.completeSuccess`` / ``completeError``, exactly once).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_wfb_function_runs"
down_revision = "0011_console_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "function_runs",
        sa.Column("execution_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("callback_id", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("ending", sa.String(length=16), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("completion", sa.String(length=16), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("execution_id", name=op.f("pk_function_runs")),
        sa.UniqueConstraint("run_id", name=op.f("uq_function_runs_run_id")),
    )


def downgrade() -> None:
    op.drop_table("function_runs")
