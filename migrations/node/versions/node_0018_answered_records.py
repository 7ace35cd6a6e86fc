"""What a node keeps to check the coordinator's records later: ``answered_records``.

For every question a node answers it keeps the log index and the leaf hash of the question's
record (which came with the question), the day and whether it alarmed about that record; its
witness loop asks for a sample of them each interval and checks what the coordinator stores
against them (docs/adr/0042). A new, empty table: nothing existing changes (questions answered
before this revision are not sampled).

Revision ID: node_0018
Revises: node_0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "node_0018"
down_revision = "node_0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answered_records",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("answered_on", sa.Date(), nullable=False),
        sa.Column("alarmed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_answered_records_answered_on", "answered_records", ["answered_on"])


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
