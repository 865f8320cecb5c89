"""approval refusals: rate-limit the audit of refused clicks per (gate, user, reason)

Revision ID: 0006_approvals_security
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_approvals_security"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_refusals",
        sa.Column("gate_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("audited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("suppressed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("gate_id", "user_id", "kind", name=op.f("pk_approval_refusals")),
    )


def downgrade() -> None:
    op.drop_table("approval_refusals")
