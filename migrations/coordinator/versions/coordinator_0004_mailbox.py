"""The coordinator's mailbox of sealed late answers: ``mailbox``.

A ``defer`` partner's node delivers its late answer here at the end of the term; the asking
organisation collects it. Per message only what routing needs: recipient, sender, answer id,
label, kind, the sealed bytes (under the question's reply key, padded) and the sender's
signature — no case, user or outcome (P4). A new, empty table (docs/adr/0037).

Revision ID: coordinator_0004
Revises: coordinator_0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "coordinator_0004"
down_revision = "coordinator_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("answer_id", sa.String(64), nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("kept_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_mailbox_recipient", "mailbox", ["recipient"])


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
