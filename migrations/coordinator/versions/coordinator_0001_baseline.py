"""Baseline: the coordinator's database as release 0.1 (commit 6fe2f79) created it — its audit
log. Unchanged since.

Revision ID: coordinator_0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from betrokken.migrations.frozen import create_log_tables_v1

revision = "coordinator_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_log_tables_v1()


def downgrade() -> None:
    raise NotImplementedError("betrokken migrates forward only; restore the backup instead")
