"""sub-runs: a run started by another run's `workflow` step, and who waits for it

Revision ID: 0010_sub_runs
Revises: 0009_workflow_versions

A `workflow: {name, inputs}` step starts a child run and waits for it. ``sub_runs``
links the child to the parent's step: when the child ends, its ending transaction
queues a signal for that step; when the parent ends other than by succeeding, its
live children are cancelled in the same transaction (``workflows/lifecycle.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_sub_runs"
down_revision = "0009_workflow_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sub_runs",
        sa.Column("child_run_id", sa.String(length=32), nullable=False),
        sa.Column("parent_run_id", sa.String(length=32), nullable=False),
        sa.Column("parent_step", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("child_run_id", name=op.f("pk_sub_runs")),
    )
    op.create_index(op.f("ix_sub_runs_parent_run_id"), "sub_runs", ["parent_run_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sub_runs_parent_run_id"), table_name="sub_runs")
    op.drop_table("sub_runs")
