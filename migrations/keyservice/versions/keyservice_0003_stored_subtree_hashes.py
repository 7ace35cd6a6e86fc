"""The audit log's stored subtree hashes (ADR 0010): an empty table.

Existing rows: none to move. The log fills the table from its leaf hashes the first time it is
opened (under the log's head lock, logged at INFO with the time it took); `betrokken audit verify`
run once before starting the service does that ahead of time for a large log.

Revision ID: keyservice_0003
Revises: keyservice_0002
Create Date: 2026-11-23 16:55:28.820489
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "keyservice_0003"
down_revision = "keyservice_0002"
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
