"""Questions look a person up by a hash of the pseudonym; advice codes; the answer outbox.

* ``registrations.lookup_key`` (32 bytes, indexed): ``SHA-256("betrokken-lookup/v1" || 0x00 ||
  pseudonym)``, what a v2 question carries instead of the pseudonym (docs/adr/0024). Existing rows
  get it computed from their pseudonym here, in batches; then the column becomes NOT NULL.
* ``registrations.advice``: a code of the network file's ``advice_codes`` shown with a hit; NULL
  for every existing row (no advice).
* ``answered_questions.outbox``: what an answered question leaves for the node's trail writer
  (one row per question, written the same way for a hit and a miss). Existing replay marks get
  NULL: they were recorded in the trail when they were answered.

Revision ID: node_0006
Revises: node_0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "node_0006"
down_revision = "node_0005"
branch_labels = None
depends_on = None

BATCH = 1000


def _lookup_key(pseudonym: bytes) -> bytes:
    # The same as betrokken.crypto.question.lookup_key, written out: a revision must not change
    # when the code it once called does.
    return hashlib.sha256(b"betrokken-lookup/v1\x00" + pseudonym).digest()


def upgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(sa.Column("lookup_key", sa.LargeBinary(32), nullable=True))
        batch.add_column(sa.Column("advice", sa.String(64), nullable=True))
    _fill_lookup_keys(op.get_bind())
    with op.batch_alter_table("registrations") as batch:
        batch.alter_column("lookup_key", existing_type=sa.LargeBinary(32), nullable=False)
        batch.create_index("ix_registrations_lookup_key", ["lookup_key"])
    with op.batch_alter_table("answered_questions") as batch:
        batch.add_column(sa.Column("outbox", sa.LargeBinary(), nullable=True))


def _fill_lookup_keys(bind: sa.Connection) -> None:
    registrations = sa.table(
        "registrations",
        sa.column("id", sa.Integer()),
        sa.column("pseudonym", sa.LargeBinary(64)),
        sa.column("lookup_key", sa.LargeBinary(32)),
    )
    statement = (
        sa.update(registrations)
        .where(registrations.c.id == sa.bindparam("row_id"))
        .values(lookup_key=sa.bindparam("key"))
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(registrations.c.id, registrations.c.pseudonym)
            .where(registrations.c.id > last)
            .order_by(registrations.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        bind.execute(
            statement,
            [{"row_id": row.id, "key": _lookup_key(bytes(row.pseudonym))} for row in rows],
        )
        last = rows[-1].id


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
