"""run outcomes: close what runs that already ended left open

Revision ID: 0008_run_outcomes
Revises: 0007_retention

Runs now end ``succeeded``, ``failed``, ``rejected``, ``cancelled`` or ``timed_out``
(``runs.status`` stays String(16)), and ending a run closes its gates and route
assignments and drops its pending jobs (``workflows/lifecycle.py``). Runs that ended
before this version left them open: App Home, ``/flow approvals`` and the pending
approvals of stats counted them, and a late click could still decide them. Close them
the way a run's end does now (``cancelled`` for cancelled runs, ``closed`` otherwise);
failed runs keep their gates, since a retry resumes them. Past rejections stay
``succeeded``: which runs were rejected is in the audit trail, not worth guessing here.
"""

from __future__ import annotations

from alembic import op

revision = "0008_run_outcomes"
down_revision = "0007_retention"
branch_labels = None
depends_on = None

_ENDED = "SELECT id FROM runs WHERE status IN ('succeeded', 'cancelled', 'rejected', 'timed_out')"
_CANCELLED = "SELECT id FROM runs WHERE status = 'cancelled'"


def upgrade() -> None:
    for table, open_states in (("approval_gates", "('open')"), ("assignments", "('open', 'claimed')")):
        op.execute(
            f"UPDATE {table} SET status = CASE WHEN run_id IN ({_CANCELLED}) "
            f"THEN 'cancelled' ELSE 'closed' END "
            f"WHERE status IN {open_states} AND run_id IN ({_ENDED})"
        )
    op.execute(
        "UPDATE jobs SET status = 'cancelled' WHERE status = 'queued' "
        "AND run_id IN (SELECT id FROM runs WHERE status IN "
        "('succeeded', 'failed', 'cancelled', 'rejected', 'timed_out'))"
    )


def downgrade() -> None:
    """Nothing to undo: the rows closed were unreachable (their runs had ended)."""
