"""The aanmelder's basis in the found partner's notices: ``notices.aanmelder_basis``.

A notice of a hit for a question asked on behalf of an aanmelder now says that aanmelder's basis
for the purpose as the network file states it when the notice is written (docs/adr/0041).
Existing notices get an empty basis: what the file said then is no longer known here (the trail's
disclosure records of new questions carry it too).

Revision ID: node_0017
Revises: node_0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "node_0017"
down_revision = "node_0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(
            sa.Column("aanmelder_basis", sa.String(1024), nullable=False, server_default="")
        )


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
