"""Nodes compare their witnessed checkpoints with each other: add ``peer_comparisons``.

Every witness interval a node asks one or two other nodes for the latest checkpoint of the
coordinator's log they witnessed, directly (not through the coordinator), and checks the two
are one history. The table keeps the latest comparison per peer for ``node status``; an
inconsistency is an alarm in the trail, as every witness alarm. A new, empty table: existing
rows are untouched.

Revision ID: node_0007
Revises: node_0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "node_0007"
down_revision = "node_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "peer_comparisons",
        sa.Column("peer", sa.Text(), nullable=False),
        sa.Column("compared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("own_size", sa.Integer(), nullable=False),
        sa.Column("peer_size", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("peer"),
    )


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
