"""Witness alarms are records in the node's trail: drop ``witness_alarms``.

Release 0.1 kept witness alarms in a table of their own; they are now ALARM records in the node's
tamper-evident trail (where ``node status`` and the DPO report read them). ``betrokken db
upgrade`` moves the old rows into the trail first — that needs the node's trail signing key, so
it happens there, not here (``betrokken.app.ops.move_witness_alarms``). This revision refuses to
drop a table that still holds alarms.

Revision ID: node_0004
Revises: node_0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "node_0004"
down_revision = "node_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if "witness_alarms" not in sa.inspect(bind).get_table_names():
        return
    left = bind.execute(sa.text("SELECT count(*) FROM witness_alarms")).scalar_one()
    if left:
        raise RuntimeError(
            f"witness_alarms still holds {left} alarm(s) from before the upgrade: run "
            "`betrokken db upgrade --config node.toml`, which moves them into the node's trail"
        )
    op.drop_table("witness_alarms")


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
