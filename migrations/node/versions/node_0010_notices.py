"""The found partner is told: add ``notices``.

On a hit at level ``organisation`` or ``domain`` the node's trail writer keeps a notice for the
organisation's contact point (who asked, for whom, the purpose, the case, when, the asker's contact
point, this node's own reference), read and acknowledged in the portal's "Meldingen" page; deleted
after the network's ``after_the_hit.notice_days`` (docs/adr/0024, section 7). A new, empty table:
existing rows are untouched, and hits answered before get no notice (their disclosure records are
in the trail).

Revision ID: node_0010
Revises: node_0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "node_0010"
down_revision = "node_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("answer_id", sa.String(64), nullable=False),
        sa.Column("person", sa.Integer(), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("role", sa.String(256), nullable=False),
        sa.Column("on_behalf_of", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("case_reference", sa.String(256), nullable=False),
        sa.Column("reference", sa.String(256), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("asker_contact", sa.String(256), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_by", sa.String(128), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("answer_id", "person", name="uq_notice_answer_person"),
    )
    op.create_index("ix_notices_asked_at", "notices", ["asked_at"])


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
