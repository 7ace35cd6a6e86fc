"""Registrations follow the case system (ADR 0011), replay marks, seen checkpoints; disclosures
live in the trail only.

* ``registrations`` gets ``given_until`` (the end the case system gave) and ``confirmed_at`` (the
  last confirmation, indexed). Existing rows: ``confirmed_at = updated_at``; ``given_until`` is
  NULL where ``until`` was the old default (``since`` + the network's ``registration_days``) and
  ``until`` otherwise; ``until`` is recomputed as ``min(given_until, confirmed day + days)``. This
  puts back in force the open cases the old default had ended but not yet removed.
* new ``withdrawals`` (withdrawals by hand, remembered), ``answered_questions`` (replay check),
  ``seen_checkpoints`` (checkpoints shown with questions, until the witness confirms them);
* ``disclosures`` is dropped: every row of it repeats a disclosure record of the node's trail,
  written in the same transaction (release 0.1's ``record_disclosures``).

Tolerates a database that development code already gave some of these tables.

Revision ID: node_0002
Revises: node_0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "node_0002"
down_revision = "node_0001"
branch_labels = None
depends_on = None

BATCH = 1000


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def _day(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.datetime.fromisoformat(str(value)).date()  # SQLite may hand back text


def upgrade() -> None:
    bind = op.get_bind()
    columns = {c["name"] for c in sa.inspect(bind).get_columns("registrations")}
    if "given_until" not in columns:
        with op.batch_alter_table("registrations") as batch:
            batch.add_column(sa.Column("given_until", sa.Date(), nullable=True))
            batch.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
            batch.create_index("ix_registrations_confirmed_at", ["confirmed_at"])
        _confirm_existing(bind)
    tables = _tables()
    if "withdrawals" not in tables:
        op.create_table(
            "withdrawals",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("pseudonym", sa.LargeBinary(64), nullable=False),
            sa.Column("key_id", sa.String(64), nullable=False),
            sa.Column("withdrawn_on", sa.Date(), nullable=False),
            sa.Column("remember_until", sa.Date(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("pseudonym", "key_id", name="uq_withdrawal_pseudonym"),
        )
        op.create_index("ix_withdrawals_remember_until", "withdrawals", ["remember_until"])
    if "answered_questions" not in tables:
        op.create_table(
            "answered_questions",
            sa.Column("answer_hash", sa.String(64), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("answer_hash"),
        )
        op.create_index("ix_answered_questions_at", "answered_questions", ["at"])
    if "seen_checkpoints" not in tables:
        op.create_table(
            "seen_checkpoints",
            sa.Column("size", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("root", sa.LargeBinary(32), nullable=False),
            sa.Column("note", sa.Text(), nullable=False),
            sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("answer_ids", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("size"),
        )
    if "disclosures" in tables:
        op.drop_index("ix_disclosures_at", table_name="disclosures")
        op.drop_table("disclosures")


def _confirm_existing(bind: sa.Connection) -> None:
    registrations = sa.table(
        "registrations",
        sa.column("id", sa.Integer()),
        sa.column("since", sa.Date()),
        sa.column("until", sa.Date()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("confirmed_at", sa.DateTime(timezone=True)),
        sa.column("given_until", sa.Date()),
    )
    rows = bind.execute(
        sa.select(
            registrations.c.id,
            registrations.c.since,
            registrations.c.until,
            registrations.c.updated_at,
        )
    ).all()
    if not rows:
        return
    config = op.get_context().config
    days = config.attributes.get("registration_days") if config is not None else None
    if not isinstance(days, int):
        raise RuntimeError(
            "registrations need the network's retention.registration_days to be migrated: "
            "run `betrokken db upgrade --config node.toml`, not Alembic by itself"
        )
    term = dt.timedelta(days=days)
    changes = []
    for row in rows:
        since, until = _day(row.since), _day(row.until)
        confirmed = _day(row.updated_at)
        given = None if until == since + term else until
        last = confirmed + term
        changes.append(
            {
                "row_id": row.id,
                "given_until": given,
                "until": min(given, last) if given else last,
            }
        )
    bind.execute(sa.update(registrations).values(confirmed_at=registrations.c.updated_at))
    statement = (
        sa.update(registrations)
        .where(registrations.c.id == sa.bindparam("row_id"))
        .values(given_until=sa.bindparam("given_until"), until=sa.bindparam("until"))
    )
    for start in range(0, len(changes), BATCH):
        bind.execute(statement, changes[start : start + BATCH])


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
