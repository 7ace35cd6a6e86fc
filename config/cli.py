"""``betrokken network ...``"""

from __future__ import annotations

from pathlib import Path

import click

from betrokken.clikit import guard


@click.group()
def network() -> None:
    """Create and check a network."""


@network.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--orgs",
    required=True,
    help="Comma-separated organisation ids, e.g. zvh-kennemerland,politie-nh",
)
@click.option(
    "--base-port",
    type=click.IntRange(1024, 65000),
    default=None,
    help="First loopback port to use (1024-65000).",
)
@click.option("--name", default="dev-network", show_default=True, help="Network name.")
@guard
def network_init(directory: Path, orgs: str, base_port: int | None, name: str) -> None:
    """Write a development network (CA, certificates, OPRF key, configs) to DIRECTORY."""
    from betrokken.config.devnet import init_network

    org_ids = [o.strip() for o in orgs.split(",") if o.strip()]
    net = init_network(directory, org_ids, base_port=base_port, name=name)
    click.echo(f"network written to {net.directory}")
    click.echo(f"  network file: {net.network_file}")
    click.echo(f"  key service:  betrokken keyservice serve --config {net.keyservice_config}")
    click.echo(f"  coordinator:  betrokken coordinator serve --config {net.coordinator_config}")
    for org, path in net.node_configs.items():
        click.echo(f"  node {org}: betrokken node serve --config {path}")


@network.command("check")
@click.argument("network_file", type=click.Path(dir_okay=False, path_type=Path))
@guard
def network_check(network_file: Path) -> None:
    """Validate a network file and summarise it."""
    from betrokken.config.load import load_network

    net = load_network(network_file)
    click.echo(f"{network_file}: valid network '{net.name}'")
    click.echo(f"  {len(net.organisations)} organisations, {len(net.nodes())} with a node")
    for purpose in net.purposes:
        click.echo(
            f"  purpose {purpose.id}: {purpose.legal_basis} "
            f"(may ask: {', '.join(purpose.allowed_organisations)})"
        )
    for policy in net.policies:
        click.echo(
            f"  policy: {policy.organisation} discloses '{policy.level}' for {policy.purpose}"
        )
