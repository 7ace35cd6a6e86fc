"""Separate quotas for questions and imports: ``quota_usage.use`` joins the primary key.

Release 0.1 counted every evaluation against one daily quota; its rows become the ``question``
use (so on the day of the upgrade an organisation's question quota counts what it used before,
imports included — never more than it had).

Revision ID: keyservice_0002
Revises: keyservice_0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "keyservice_0002"
down_revision = "keyservice_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot change a primary key in place: copy into a table of the new shape.
        op.create_table(
            "quota_usage_new",
            sa.Column("organisation", sa.String(64), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("use", sa.String(16), nullable=False),
            sa.Column("used", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("organisation", "day", "use"),
        )
        op.execute(
            "INSERT INTO quota_usage_new (organisation, day, use, used) "
            "SELECT organisation, day, 'question', used FROM quota_usage"
        )
        op.drop_table("quota_usage")
        op.rename_table("quota_usage_new", "quota_usage")
        return
    op.add_column(
        "quota_usage",
        sa.Column("use", sa.String(16), nullable=False, server_default="question"),
    )
    op.alter_column("quota_usage", "use", server_default=None)
    op.drop_constraint("quota_usage_pkey", "quota_usage", type_="primary")
    op.create_primary_key("quota_usage_pkey", "quota_usage", ["organisation", "day", "use"])


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
