"""``betrokken coordinator serve``."""

from __future__ import annotations

from pathlib import Path

import click

from betrokken.clikit import config_option, guard, serve


@click.group()
def coordinator() -> None:
    """The coordinator (a blind relay between the asking organisation and the nodes)."""


@coordinator.command("serve")
@config_option
@guard
def coordinator_serve(config_path: Path) -> None:
    """Run the coordinator until stopped (Ctrl-C or SIGTERM)."""
    from betrokken.coordinator.server import start

    serve(lambda: start(config_path), "coordinator")
