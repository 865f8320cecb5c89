"""audit records sealed into the chain after commit

Revision ID: 0004
Revises: 0003

Appending to the hash chain inside every step's transaction serialised all
completions (a global lock on PostgreSQL). Records are now written unsealed and
a sealer gives them their place in the chain (``chain_seq``) and their hashes.
Existing records keep their hashes; their place is their ``seq``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("audit_records") as batch:
        batch.add_column(sa.Column("chain_seq", _SEQ, nullable=True))
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
        batch.create_unique_constraint(batch.f("uq_audit_records_chain_seq"), ["chain_seq"])
    op.execute("UPDATE audit_records SET chain_seq = seq")
    op.create_index(
        "ix_audit_records_unsealed",
        "audit_records",
        ["seq"],
        postgresql_where=sa.text("chain_seq IS NULL"),
        sqlite_where=sa.text("chain_seq IS NULL"),
    )


def downgrade() -> None:
    # Unsealed records make this fail (hash NOT NULL): seal first (`switchboard audit verify`).
    op.drop_index("ix_audit_records_unsealed", table_name="audit_records")
    with op.batch_alter_table("audit_records") as batch:
        batch.drop_constraint(batch.f("uq_audit_records_chain_seq"), type_="unique")
        batch.drop_column("chain_seq")
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
