"""Table definitions that several components' revisions share, frozen as they were at that
revision. Never change a function here: a later schema change is a new revision of each chain."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def create_log_tables_v1() -> None:
    """The audit log (RFC 9162 Merkle log) as of release 0.1 (6fe2f79): every component has one."""
    op.create_table(
        "log_records",
        sa.Column("index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("answer_id", sa.String(64), nullable=False),
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("index"),
    )
    for column in ("answer_id", "at", "event", "organisation"):
        op.create_index(f"ix_log_records_{column}", "log_records", [column])
    op.create_table(
        "log_subjects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(["index"], ["log_records.index"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_log_subjects_index", "log_subjects", ["index"])
    op.create_index("ix_log_subjects_pseudonym", "log_subjects", ["pseudonym"])
    op.create_table(
        "log_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("frontier", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "log_checkpoints",
        sa.Column("size", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
