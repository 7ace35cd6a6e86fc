"""The restriction step of an access request: ``access_requests.answer_id`` and ``asked_at``.

The FG's question to the partners for a request (every partner defers it to its own FG, who
agrees or restricts, docs/adr/0039) is remembered by its answer id and when it was asked, so the
register and the letter can show which partners have not answered yet and until when, and read
their late answers when they come; a letter made again reads them instead of asking again.
Existing rows get an empty answer id and no time: their partners were asked before the
restriction step.

Revision ID: node_0016
Revises: node_0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "node_0016"
down_revision = "node_0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_requests") as batch:
        batch.add_column(
            sa.Column("answer_id", sa.String(length=64), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("asked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
