"""console indexes: the runs list, newest first, by each filter, at a million runs

Revision ID: 0011_console_indexes
Revises: 0010_sub_runs

The operator console lists runs ordered by ``(created_at, id)`` descending with keyset
pagination, optionally filtered by workflow, status or requester. One index per filter,
ending in the sort key, makes each page an index range scan of ~50 rows however many runs
there are (``python -m bench.console_runs``).
"""

from __future__ import annotations

from alembic import op

revision = "0011_console_indexes"
down_revision = "0010_sub_runs"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_runs_newest": ["created_at", "id"],
    "ix_runs_workflow_newest": ["workflow", "created_at", "id"],
    "ix_runs_status_newest": ["status", "created_at", "id"],
    "ix_runs_requester_newest": ["requester", "created_at", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "runs", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="runs")
