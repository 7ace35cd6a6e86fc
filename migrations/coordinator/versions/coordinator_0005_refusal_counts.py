"""Counted refusals of a minute still running, kept so that a killed coordinator loses none:
``refusal_counts``.

Per caller, kind of refusal and minute only the count and the methods called — the same as the
record written when the minute is over (docs/adr/0017). A new, empty table.

Revision ID: coordinator_0005
Revises: coordinator_0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "coordinator_0005"
down_revision = "coordinator_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refusal_counts",
        sa.Column("caller", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("methods", sa.String(512), nullable=False),
        sa.PrimaryKeyConstraint("caller", "kind", "minute"),
    )


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
