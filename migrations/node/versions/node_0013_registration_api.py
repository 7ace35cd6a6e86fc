"""The registration API for the partners' case systems: ``feed_requests``.

``feed_requests`` keeps each call of the API under the calling system's idempotency key, with a
SHA-256 of the request (never the request: it holds BSNs) and the answer once applied, so a
retried call changes nothing and gets the same answer (docs/adr/0035). What each system fed
and had refused is counted in ``feed_status`` (node_0014). A new, empty table: nothing existing
changes.

Revision ID: node_0013
Revises: node_0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "node_0013"
down_revision = "node_0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_requests",
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("answer", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("system", "key"),
    )
    op.create_index("ix_feed_requests_claimed_at", "feed_requests", ["claimed_at"])


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
