"""The audit log's stored subtree hashes (ADR 0010): an empty table.

Existing rows: none to move. The log fills the table from its leaf hashes the first time it is
opened (under the log's head lock, logged at INFO with the time it took); `betrokken audit verify`
run once before starting the service does that ahead of time for a large log.

Revision ID: coordinator_0002
Revises: coordinator_0001
Create Date: 2026-11-23 16:55:29.636031
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "coordinator_0002"
down_revision = "coordinator_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_subtrees",
        sa.Column(
            "position",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("position"),
    )


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
