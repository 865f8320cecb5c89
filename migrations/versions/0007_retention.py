"""retention: runs remember when their texts were purged

Revision ID: 0007_retention
Revises: 0006_approvals_security

``purged_at`` makes a purge idempotent: processes purging at once each take the runs
not yet purged (a guarded UPDATE), so every run is purged and audited once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_retention"
down_revision = "0006_approvals_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("purged_at")
