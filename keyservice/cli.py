"""``betrokken keyservice ...``"""

from __future__ import annotations

from pathlib import Path

import click

from betrokken.clikit import config_option, guard, serve


@click.group()
def keyservice() -> None:
    """The key service (holds the OPRF key; evaluates blinded elements)."""


@keyservice.command("serve")
@config_option
@guard
def keyservice_serve(config_path: Path) -> None:
    """Run the key service until stopped (Ctrl-C or SIGTERM)."""
    from betrokken.keyservice.server import start

    serve(lambda: start(config_path), "key service")
