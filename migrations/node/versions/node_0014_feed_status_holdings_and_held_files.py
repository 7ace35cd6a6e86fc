"""Feeds from the organisation's case systems: ``feed_status``, ``feed_holdings``,
``feed_held_files``.

A node may be fed by its case systems without a person in between (a watched drop folder per
system; docs/adr/0036). These three new tables hold, per feeding system, its last events and
counts (no value of any line), which registrations it holds (so that its full export ends only
what it fed and no longer holds), and the exports held back for a beheerder's decision. New
tables only: existing rows are untouched; no system holds a registration until it feeds one.

Revision ID: node_0014
Revises: node_0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "node_0014"
down_revision = "node_0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_status",
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("known_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event", sa.String(16), nullable=True),
        sa.Column("last_source", sa.String(256), nullable=True),
        sa.Column("last_added", sa.Integer(), nullable=False),
        sa.Column("last_confirmed", sa.Integer(), nullable=False),
        sa.Column("last_ended", sa.Integer(), nullable=False),
        sa.Column("last_refused", sa.Integer(), nullable=False),
        sa.Column("refused_total", sa.Integer(), nullable=False),
        sa.Column("last_problem", sa.String(512), nullable=True),
        sa.Column("quiet_alarm_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("system"),
    )
    op.create_table(
        "feed_holdings",
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("pseudonym", sa.LargeBinary(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("system", "pseudonym", "key_id"),
    )
    op.create_table(
        "feed_held_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("file_name", sa.String(256), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ending", sa.Integer(), nullable=False),
        sa.Column("holding", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_feed_held_files_system", "feed_held_files", ["system"])


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
