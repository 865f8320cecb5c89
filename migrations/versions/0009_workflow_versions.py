"""workflow versions: runs pin the definition they started with

Revision ID: 0009_workflow_versions
Revises: 0007_retention

A waiting run finishes on the definition it started with, whatever was edited or
redeployed meanwhile: ``workflow_versions`` keeps each definition once per content
digest and ``runs.workflow_version`` names the run's. Runs from before have NULL and
use the live definition, as they did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009_workflow_versions"
down_revision = "0008_run_outcomes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflow_versions",
        sa.Column("workflow", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column(
            "definition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workflow", "digest", name=op.f("pk_workflow_versions")),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("workflow_version", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("workflow_version")
    op.drop_table("workflow_versions")
