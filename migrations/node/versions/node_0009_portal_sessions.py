"""The portal's logged-in sessions in the database (``portal_sessions``), so a restart or a second
portal process keeps everyone logged in. A new, empty table: existing rows are untouched; sessions
of the running portal are in its memory and end with it once more, at this upgrade.

Revision ID: node_0009
Revises: node_0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "node_0009"
down_revision = "node_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.Column("user", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
