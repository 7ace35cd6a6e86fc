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
    from betrokken.app.devnet import init_network

    org_ids = [o.strip() for o in orgs.split(",") if o.strip()]
    net = init_network(directory, org_ids, base_port=base_port, name=name)
    click.echo(f"network written to {net.directory}")
    click.echo(f"  network file: {net.network_file}")
    click.echo(f"  key service:  betrokken keyservice serve --config {net.keyservice_config}")
    click.echo(f"  coordinator:  betrokken coordinator serve --config {net.coordinator_config}")
    for org, path in net.node_configs.items():
        click.echo(f"  node {org}: betrokken node serve --config {path}")
    for org, path in net.portal_configs.items():
        click.echo(f"  portal {org}: betrokken portal serve --config {path}")
    click.echo("  accounts: betrokken portal user add --config <portal.toml> NAME --role ...")


@network.command("check")
@click.argument("network_file", type=click.Path(dir_okay=False, path_type=Path))
@guard
def network_check(network_file: Path) -> None:
    """Validate a network file and summarise it, with warnings a reviewer should read.

    Checks every organisation's pinned keys (its OPRF public key, the verifier of its question key,
    the HPKE key of its node) and warns where a domain-only answer would still name an organisation.
    """
    from betrokken.config.load import load_network
    from betrokken.crypto import envelope
    from betrokken.crypto.note import parse_verifier
    from betrokken.errors import ConfigError, MalformedMessage

    net = load_network(network_file)
    # Closed unless configured: roles, k-anonymous domains, professional secrecy, a providing
    # basis, aanmelders (betrokken.rules.network_problems); refused with exit code 9 before
    # anything is said to be valid.
    from betrokken.rules import check_lawful

    check_lawful(net, str(network_file))
    click.echo(f"{network_file}: valid network '{net.name}'")
    click.echo(f"  {len(net.organisations)} organisations, {len(net.nodes())} with a node")
    problems: list[str] = []
    for org in net.organisations:
        try:
            if org.question_key:
                parse_verifier(org.question_key)
            if org.envelope_key:
                envelope.public_key(org.envelope_public_key)
        except MalformedMessage as exc:
            problems.append(f"organisation '{org.id}': {exc.message}")
        parts = [f"pseudonym key {org.pseudonym_key_id}"]
        parts.append("asks (question key pinned)" if org.question_key else "does not ask")
        parts.append(
            f"node {org.node_address} ({org.server_name})" if org.node_address else "no node"
        )
        click.echo(f"  organisation {org.id} ({org.domain}): " + "; ".join(parts))
    if problems:
        raise ConfigError("\n  ".join(problems), hint="pin the keys `betrokken node keys` prints")
    witnesses, quorum = net.witness_ids(), net.witness_quorum()
    click.echo(
        f"  witnesses: {len(witnesses)} ({', '.join(witnesses) or 'none'}); a node answers only "
        f"under a checkpoint {quorum} other witness(es) cosigned"
    )
    if quorum < net.safe_witness_quorum():
        click.echo(
            f"  WARNING: a quorum of {quorum} of {len(witnesses)} witnesses is below "
            f"{net.safe_witness_quorum()}: two histories could each be cosigned, and only the "
            "nodes' comparisons would show it afterwards (docs/operator.md, 'Witnesses')"
        )
    from betrokken.identity.pins import unpinned

    for party in unpinned(net):
        click.echo(
            f"  WARNING: the allow-list of {party} holds no certificates (empty, or fingerprints "
            "only): clients cannot refuse another certificate for it in the TLS handshake"
        )
    for purpose in net.purposes:
        click.echo(
            f"  purpose {purpose.id}: {purpose.legal_basis} "
            f"(may ask: {', '.join(purpose.allowed_organisations)}; "
            f"roles: {', '.join(purpose.allowed_roles) or 'none'}; on behalf of: "
            f"{', '.join(a.organisation for a in purpose.on_behalf_of) or 'itself only'})"
        )
    for policy in net.policies:
        click.echo(
            f"  policy: {policy.organisation} discloses '{policy.level}' for {policy.purpose}"
            + (f" ({policy.providing_basis})" if policy.providing_basis else "")
        )
    click.echo("  roles: " + (", ".join(r.id for r in net.roles) or "none"))
    accounts = [f"{a.user} ({a.organisation}, {a.role})" for a in net.service_accounts]
    click.echo("  service accounts (command line): " + (", ".join(accounts) or "none"))
    limits = net.user_limits
    click.echo(
        f"  per user: {limits.daily_persons} persons a day, at most {limits.persons_per_case} "
        "under one case reference (a household)"
    )
    click.echo("  lawful: every rule of docs/dpo.md, 'Gesloten tenzij geregeld', holds")
