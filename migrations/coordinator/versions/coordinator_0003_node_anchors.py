"""Each node's anchor at the coordinator: the largest size of the log it cosigned, when its
database last went back, and how far its clock is from the coordinator's (coordinator/anchors.py).
An empty table: anchors grow from the next cosignatures.

Revision ID: coordinator_0003
Revises: coordinator_0002
Create Date: 2026-12-07 04:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "coordinator_0003"
down_revision = "coordinator_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_anchors",
        sa.Column("organisation", sa.String(length=64), nullable=False),
        sa.Column("cosigned_size", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("went_back_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("went_back_to", sa.Integer(), nullable=True),
        sa.Column("clock_offset", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("organisation"),
    )


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
