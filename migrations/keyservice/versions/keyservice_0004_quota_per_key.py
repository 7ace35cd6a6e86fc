"""Quotas per key: ``quota_usage.under_key`` (whose key the persons were evaluated under) joins the
primary key.

The key service now counts an organisation's persons per day, per use *and per key*, so asking
under five organisations' keys costs five times what asking under one does (docs/adr/0024). Every
earlier question and import was evaluated under the asking organisation's own key, so an existing
row becomes the count under that key: on the day of the upgrade nobody can ask more than before.

Revision ID: keyservice_0004
Revises: keyservice_0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "keyservice_0004"
down_revision = "keyservice_0003"
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
            sa.Column("under_key", sa.String(64), nullable=False),
            sa.Column("used", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("organisation", "day", "use", "under_key"),
        )
        op.execute(
            "INSERT INTO quota_usage_new (organisation, day, use, under_key, used) "
            "SELECT organisation, day, use, organisation, used FROM quota_usage"
        )
        op.drop_table("quota_usage")
        op.rename_table("quota_usage_new", "quota_usage")
        return
    op.add_column("quota_usage", sa.Column("under_key", sa.String(64), nullable=True))
    op.execute("UPDATE quota_usage SET under_key = organisation")
    op.alter_column("quota_usage", "under_key", nullable=False)
    op.drop_constraint("quota_usage_pkey", "quota_usage", type_="primary")
    op.create_primary_key(
        "quota_usage_pkey", "quota_usage", ["organisation", "day", "use", "under_key"]
    )


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
