"""Defer decided by a professional, and signals: ``deferred_questions``, ``deferral_requests``,
``watches`` (the answering side) and ``awaited_answers``, ``late_answers`` (the asking side).

A ``defer`` node now receives the question, answers ``pending`` and keeps a timer per question
(``deferred_questions``: the reply key and the term's end, hit or miss) and, for a person known
there, a request its professionals decide about (``deferral_requests``: who asked, purpose, case,
its own reference and pseudonym; never a BSN). At the term's end the node delivers one sealed late
answer through the coordinator's mailbox and deletes both rows; the trail keeps the decision.
A question that leaves a watch leaves, at a node that names itself and does not know the person,
the person's lookup hash and sealed item (``watches``); when the node registers that person later,
it opens the item and signals the asker, through the same mailbox.

The asking organisation keeps, per deferred answer it waits for, the reply key sealed to its own
envelope key (``awaited_answers``), and the late answers it collected and checked
(``late_answers``), which its portal shows. New, empty tables (docs/adr/0037).

Revision ID: node_0015
Revises: node_0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "node_0015"
down_revision = "node_0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deferred_questions",
        sa.Column("answer_id", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.Column("reply_key", sa.LargeBinary(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("answer_id"),
    )
    op.create_index("ix_deferred_questions_deadline", "deferred_questions", ["deadline"])
    op.create_table(
        "deferral_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("answer_id", sa.String(64), nullable=False),
        sa.Column("person", sa.Integer(), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("role", sa.String(256), nullable=False),
        sa.Column("on_behalf_of", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("case_reference", sa.String(256), nullable=False),
        sa.Column("reference", sa.String(256), nullable=False),
        sa.Column("pseudonym", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("ground", sa.String(64), nullable=True),
        sa.Column("decided_by", sa.String(256), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_deferral_requests_answer_id", "deferral_requests", ["answer_id"])
    op.create_table(
        "watches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lookup_key", sa.LargeBinary(), nullable=False),
        sa.Column("answer_id", sa.String(64), nullable=False),
        sa.Column("person", sa.Integer(), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_watches_lookup_key", "watches", ["lookup_key"])
    op.create_index("ix_watches_expires_at", "watches", ["expires_at"])
    op.create_table(
        "awaited_answers",
        sa.Column("answer_id", sa.String(64), nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("user", sa.String(256), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("answer_id", "label"),
    )
    op.create_table(
        "late_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("answer_id", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("user", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answers", sa.Text(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
