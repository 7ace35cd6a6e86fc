"""``betrokken node ...``: the node operator's commands."""

from __future__ import annotations

import datetime as dt
import getpass
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click

from betrokken.clikit import config_option, guard, serve
from betrokken.config.load import Loaded, load_node
from betrokken.config.schema import NodeConfig, Organisation
from betrokken.crypto.bsn import parse_bsn
from betrokken.db import redacted
from betrokken.errors import BadInput
from betrokken.keyservice.client import Pseudonymiser
from betrokken.node.importer import Registrar
from betrokken.node.server import open_store, open_witness
from betrokken.node.witness import CoordinatorLog, witness_once


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _org(loaded: Loaded[NodeConfig]) -> Organisation:
    org = loaded.network.organisation(loaded.component.organisation)
    assert org is not None  # load_node checked it
    return org


@click.group()
def node() -> None:
    """A partner's node: its registrations and the lookups it answers."""


@node.command("serve")
@config_option
@guard
def node_serve(config_path: Path) -> None:
    """Answer the coordinator's lookups until stopped (Ctrl-C or SIGTERM)."""
    from betrokken.node.server import start

    serve(lambda: start(config_path), "node")


def _registrar(loaded: Loaded[NodeConfig]) -> tuple[Registrar, Pseudonymiser]:

    pseudonymiser = Pseudonymiser(loaded.network, loaded.tls, loaded.component.organisation)
    store = open_store(loaded)
    registrar = Registrar(
        loaded.network, _org(loaded), store, pseudonymiser, actor=getpass.getuser()
    )
    return registrar, pseudonymiser


@node.command("register")
@config_option
@click.option("--bsn", required=True, help="The person's BSN (never stored; pseudonymised).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Start of involvement (today).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="End (default: retention term).")
@click.option("--contact", help="Contact point for this registration (default: organisation's).")
@click.option("--reference", help="Your own case reference (no personal data).")
@click.option("--domain-only", is_flag=True, help="Disclose only the domain for this person.")
@guard
def node_register(
    config_path: Path,
    bsn: str,
    since: dt.datetime | None,
    until: dt.datetime | None,
    contact: str | None,
    reference: str | None,
    domain_only: bool,
) -> None:
    """Register that this organisation is involved with a person."""
    from betrokken.node.importer import details

    loaded = load_node(config_path)
    person = parse_bsn(bsn)
    info = details(
        loaded.network,
        _org(loaded),
        since=since.date() if since else None,
        until=until.date() if until else None,
        contact=contact,
        reference=reference,
        disclosure="domain" if domain_only else None,
        today=_today(),
    )
    registrar, pseudonymiser = _registrar(loaded)
    with pseudonymiser:
        change = registrar.register(person, info)
    click.echo(f"{person.masked()}: {change.value} (until {info.until.isoformat()})")


@node.command("withdraw")
@config_option
@click.option("--bsn", help="The person's BSN.")
@click.option("--reference", help="Withdraw by your own case reference instead.")
@guard
def node_withdraw(config_path: Path, bsn: str | None, reference: str | None) -> None:
    """End a registration (involvement ended). Nothing about the person remains."""

    if bool(bsn) == bool(reference):
        raise BadInput("give either --bsn or --reference", hint="one of the two, not both")
    loaded = load_node(config_path)
    if reference:
        removed = open_store(loaded).withdraw(reference=reference, actor=getpass.getuser())
        label = f"reference {reference}"
    else:
        person = parse_bsn(bsn or "")
        registrar, pseudonymiser = _registrar(loaded)
        with pseudonymiser:
            removed = registrar.withdraw(person)
        label = person.masked()
    if removed:
        click.echo(f"{label}: withdrawn ({removed} registration(s) removed)")
    else:
        click.echo(f"{label}: no registration found; nothing changed")


@node.command("import")
@config_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@guard
def node_import(config_path: Path, file: Path, quiet: bool) -> None:
    """Import registrations from a CSV FILE (header: bsn[,since,until,contact,reference,...]).

    Bad lines are listed and skipped; they never stop the rest and are never half-stored.
    Exit code 0 when every line was stored, 2 when some were rejected.
    """
    from tqdm import tqdm

    loaded = load_node(config_path)
    if not file.is_file():
        raise BadInput(f"{file}: file not found")
    lines = max(0, sum(1 for _ in file.open(encoding="utf-8-sig", errors="replace")) - 1)
    registrar, pseudonymiser = _registrar(loaded)
    bar: Any = tqdm(total=lines, unit="line", disable=quiet, desc="importing", file=sys.stderr)
    with pseudonymiser, bar:
        summary = registrar.import_csv(file, progress=bar.update)
    click.echo(
        f"{file}: {summary.added} added, {summary.updated} updated, "
        f"{summary.unchanged} unchanged, {len(summary.rejected)} rejected"
    )
    for line, reason in summary.rejected:
        click.echo(f"  line {line}: {reason}")
    if summary.rejected:
        raise SystemExit(BadInput.exit_code)


@node.command("status")
@config_option
@guard
def node_status(config_path: Path) -> None:
    """Show what this node holds (counts only) and its configuration."""

    loaded = load_node(config_path)
    org = _org(loaded)
    store = open_store(loaded)
    status = store.status(_today())
    click.echo(f"node of {org.id} ({org.name}) in network '{loaded.network.name}'")
    click.echo(f"  listens on:         {loaded.component.listen or org.node_address}")
    click.echo(f"  database:           {redacted(loaded.component.database)}")
    click.echo(f"  active:             {status.active} registration(s)")
    for domain, count in sorted(status.by_domain.items()):
        click.echo(f"    domain {domain}: {count}")
    click.echo(f"  ended, not removed: {status.ended_not_yet_removed}")
    keys = ", ".join(f"{k} ({v})" for k, v in status.key_ids.items()) or "none"
    click.echo(f"  key ids:            {keys}; this organisation's key: {org.pseudonym_key_id}")
    stale = [k for k in status.key_ids if k != org.pseudonym_key_id]
    if stale:
        click.echo("  WARNING: registrations under an old key id do not match; re-import them")
    click.echo(f"  disclosures made:   {status.disclosures}")
    last = f"{status.last_change:%Y-%m-%d %H:%M:%S} UTC" if status.last_change else "never"
    click.echo(f"  last change:        {last}")
    click.echo(f"  own trail:          {store.trail.size()} record(s)")
    witness = open_witness(store)
    accepted = witness.last()
    if accepted is None:
        click.echo("  witness:            no checkpoint of the coordinator's log accepted yet")
    else:
        when = f"{accepted.accepted_at:%Y-%m-%d %H:%M:%S} UTC" if accepted.accepted_at else ""
        click.echo(
            f"  witness:            coordinator's log accepted at {accepted.size} records {when}"
        )
    alarms = witness.alarms()
    if alarms:
        latest = alarms[-1]
        kinds = ", ".join(
            f"{kind} ({count})" for kind, count in sorted(Counter(a.kind for a in alarms).items())
        )
        click.echo(
            f"  ALARMS:             {len(alarms)} ({kinds}); latest {latest.at:%Y-%m-%d %H:%M} "
            f"UTC ({latest.kind}): {latest.message}"
        )
        click.echo(
            "                      questions refused because they failed this node's checks, or "
            "a fork of the coordinator's log; see docs/dpo.md 'Alarms'"
        )


@node.command("expire")
@config_option
@guard
def node_expire(config_path: Path) -> None:
    """Remove registrations whose term has ended (the running node also does this hourly)."""

    loaded = load_node(config_path)
    removed = open_store(loaded).expire(_today(), actor=getpass.getuser())
    click.echo(f"{removed} ended registration(s) removed")


@node.command("witness")
@config_option
@click.option(
    "--once", is_flag=True, required=True, help="Check once and exit (serve checks regularly)."
)
@guard
def node_witness(config_path: Path, once: bool) -> None:
    """Check the coordinator's audit log: signature, and consistency with what was accepted.

    Exit code 0 when the log is consistent, 8 on a witness alarm (rollback, fork, bad signature).
    """
    from betrokken.audit.keys import log_origin

    loaded = load_node(config_path)
    network = loaded.network
    store = open_witness(open_store(loaded))
    source = CoordinatorLog(network, loaded.tls)
    try:
        result = witness_once(
            store, source, network.coordinator.log_key, log_origin(network.name, "coordinator")
        )
    finally:
        source.close()
    click.echo(result.describe())


@node.command("witnessed")
@config_option
@guard
def node_witnessed(config_path: Path) -> None:
    """Print the coordinator checkpoints this node accepted (for `betrokken audit verify`)."""
    loaded = load_node(config_path)
    for accepted in open_witness(open_store(loaded)).accepted():
        click.echo(accepted.note, nl=False)
        click.echo("")
