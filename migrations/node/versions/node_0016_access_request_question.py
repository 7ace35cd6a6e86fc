"""The restriction step of an access request: ``access_requests.answer_id``.

The FG's question to the partners for a request (every partner defers it to its own FG, who
agrees or restricts, docs/adr/0039) is remembered by its answer id, so the register and the
letter can show which partners have not answered yet and until when, and read their late answers
when they come. Existing rows get an empty answer id: their partners were asked before the
restriction step, and their letters are not made again from it.

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


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
