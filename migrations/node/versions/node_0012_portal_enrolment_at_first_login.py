"""Portal accounts added or reset in the browser enrol at their first login: ``must_enrol``.

A beheerder who adds or resets an account in the portal hands over a temporary password; the
TOTP secret is shown (as a QR code) only to the user, at the first login, which also replaces
the temporary password. One column, false for every existing account (they were enrolled on the
command line). See portal/users.py and portal/accounts.py.

Revision ID: node_0012
Revises: node_0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "node_0012"
down_revision = "node_0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("portal_users") as batch:
        batch.add_column(
            sa.Column("must_enrol", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
