"""oauth installations: one app in many Slack workspaces, and runs scoped by workspace

Revision ID: 0013_oauth_installations
Revises: 0012_wfb_function_runs

``slack_installations`` holds each workspace's install (bot token, refresh token and its
expiry inside ``data``, as slack_sdk's ``Installation``); ``slack_oauth_states`` the
one-use ``state`` values of installs in progress. ``runs.team_id`` / ``enterprise_id`` name
the workspace a run belongs to (copied from its request; older runs from theirs), indexed
for the console's list of one workspace's runs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_oauth_installations"
down_revision = "0012_wfb_function_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
    op.create_table(
        "slack_installations",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("enterprise_id", sa.String(length=32), nullable=True),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("data", json_type, nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_installations")),
    )
    op.create_table(
        "slack_oauth_states",
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_slack_oauth_states")),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("team_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("enterprise_id", sa.String(length=32), nullable=True))
    op.execute(
        "UPDATE runs SET team_id = (SELECT requests.team_id FROM requests"
        " WHERE requests.id = runs.request_id)"
    )
    op.create_index("ix_runs_team_newest", "runs", ["team_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_runs_team_newest", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("enterprise_id")
        batch.drop_column("team_id")
    op.drop_table("slack_oauth_states")
    op.drop_table("slack_installations")
