"""concurrency slots: limits per workflow and per connection across processes

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "concurrency_slots",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("holder_owner", sa.String(length=64), nullable=True),
        sa.Column("holder_job", _ID, nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", "slot", name=op.f("pk_concurrency_slots")),
    )
    op.create_index(
        op.f("ix_concurrency_slots_holder_owner"), "concurrency_slots", ["holder_owner"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_concurrency_slots_holder_owner"), table_name="concurrency_slots")
    op.drop_table("concurrency_slots")
