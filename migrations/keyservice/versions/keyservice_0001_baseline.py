"""Baseline: the key service's database as release 0.1 (commit 6fe2f79) created it — quota use
per organisation and day, and its audit log.

Revision ID: keyservice_0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from betrokken.migrations.frozen import create_log_tables_v1

revision = "keyservice_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quota_usage",
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organisation", "day"),
    )
    create_log_tables_v1()


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
