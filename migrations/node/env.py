"""Alembic environment of this component's chain: see ``betrokken.migrations.run_environment``."""

from alembic import context

from betrokken.migrations import run_environment

run_environment(context)
