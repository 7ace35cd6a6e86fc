"""The ``betrokken`` command. Each service folder brings its own commands; this joins them."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path

import click

from betrokken.audit.cli import audit
from betrokken.clikit import DEBUG_ENV, as_error, escape_lines, guard
from betrokken.config.cli import network
from betrokken.coordinator.cli import coordinator
from betrokken.keyservice.cli import keyservice
from betrokken.node.cli import node
from betrokken.requester.cli import query


@click.group()
@click.version_option(package_name="betrokken")
def main() -> None:
    """betrokken: is any other organisation involved with this person?

    A federated hit/no-hit index for the care-and-safety field: no BSN is stored, no central
    list of persons exists, and every question is purpose-bound and recorded.
    """


@main.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to build the demo network (default: a new temporary folder, kept afterwards).",
)
@click.option(
    "--per-node",
    type=click.IntRange(1, 100_000),
    default=2000,
    show_default=True,
    help="Registrations per node.",
)
@click.option(
    "--base-port", type=click.IntRange(1024, 65000), default=None, help="First loopback port."
)
@guard
def demo(directory: Path | None, per_node: int, base_port: int | None) -> None:
    """Build a five-organisation network on loopback, fill it, and show what it answers."""
    from betrokken.demo import run_demo

    if not run_demo(directory, per_node=per_node, base_port=base_port, out=click.echo):
        raise SystemExit(1)


main.add_command(network)
main.add_command(keyservice)
main.add_command(coordinator)
main.add_command(node)
main.add_command(query)
main.add_command(audit)


def run() -> None:
    """``betrokken``: every command, with a last safety net — whatever escapes a command's own
    error handling is still a message and an exit code, never a traceback."""
    # Store failures are logged by services; a command shows them as its error message instead.
    logging.getLogger("betrokken.store").setLevel(logging.CRITICAL)
    try:
        main(standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        error = as_error(exc)
        click.echo(escape_lines(error.diagnostics()), err=True)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    run()
