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
from betrokken.crypto.bsn import Bsn, parse_bsn
from betrokken.db import redacted
from betrokken.errors import BadInput, BetrokkenError, ConfigError, SyncGuarded
from betrokken.identity.certs import expiry_warning
from betrokken.keyservice.client import Pseudonymiser
from betrokken.node.clockwatch import ClockWatch, read_measured
from betrokken.node.importer import FIELDS, HEADERS, REQUIRED, ImportSummary, Registrar
from betrokken.node.server import (
    check_coordinator,
    clock_path,
    open_anchored_store,
    open_store,
    open_witness,
    read_own_anchor,
    refresh_anchor,
)
from betrokken.node.store import ENDING_SOON_DAYS
from betrokken.node.witness import CoordinatorLog, witness_once
from betrokken.tabular import Table, open_table, parse_mapping


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
    store = open_anchored_store(loaded)
    registrar = Registrar(
        loaded.network, _org(loaded), store, pseudonymiser, actor=getpass.getuser()
    )
    return registrar, pseudonymiser


BSN_HELP = (
    "The person's BSN (never stored; pseudonymised). Give '-' to read it from standard input "
    "(or a hidden prompt), so it stays out of shell history and the process list."
)


def read_bsn(value: str) -> Bsn:
    """``--bsn VALUE``, or with ``-`` a line from standard input (a hidden prompt on a tty)."""
    if value != "-":
        return parse_bsn(value)
    stream = sys.stdin
    if stream is None:
        raise BadInput("--bsn -: there is no standard input to read the BSN from")
    if stream.isatty():
        text = click.prompt("BSN", hide_input=True, err=True, default="", show_default=False)
        return parse_bsn(str(text))
    raw = stream.buffer.readline(64) if hasattr(stream, "buffer") else stream.readline(64).encode()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise BadInput(
            "--bsn -: standard input does not hold a BSN (it has non-ASCII bytes)",
            hint="pipe in the 9 digits only, e.g. from your password manager or case system",
        ) from None
    return parse_bsn(text)


def _date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value else None


DATE = click.DateTime(["%Y-%m-%d", "%d-%m-%Y"])


@node.command("register")
@config_option
@click.option("--bsn", required=True, help=BSN_HELP)
@click.option("--since", type=DATE, help="Start of involvement (new: today; else kept).")
@click.option(
    "--until",
    type=DATE,
    help="The case's end, when the case system has one (else kept; new: open-ended).",
)
@click.option("--open", "open_", is_flag=True, help="The case has no end (clears an --until).")
@click.option("--contact", help="Contact point for this registration (new: organisation's).")
@click.option("--reference", help="Your own case reference (no personal data; else kept).")
@click.option(
    "--domain-only/--policy-disclosure",
    default=None,
    help="Disclose only the domain for this person / let the network's policy decide again.",
)
@click.option(
    "--advice",
    help="A coded advice shown with a hit, one of the network file's advice_codes "
    "(e.g. eerst-contact); '' removes it (else kept).",
)
@guard
def node_register(
    config_path: Path,
    bsn: str,
    since: dt.datetime | None,
    until: dt.datetime | None,
    open_: bool,
    contact: str | None,
    reference: str | None,
    domain_only: bool | None,
    advice: str | None,
) -> None:
    """Register, or confirm, that this organisation is involved with a person.

    Each register confirms the registration: an open case stays active until the network's
    retention term after its last confirmation. What is not given is kept from an existing
    registration. Registering a person withdrawn by hand registers them again.
    """
    from betrokken.node.importer import details

    if until and open_:
        raise BadInput("give --until or --open, not both")
    loaded = load_node(config_path)
    person = read_bsn(bsn)
    given = {
        name
        for name, value in (
            ("since", since),
            ("until", until or open_ or None),
            ("contact", contact),
            ("reference", reference),
            ("disclosure", domain_only),
            ("advice", advice),
        )
        if value is not None
    }
    today = _today()
    info = details(
        loaded.network,
        _org(loaded),
        since=_date(since),
        until=_date(until),
        contact=contact,
        reference=reference,
        disclosure="domain" if domain_only else None,
        advice=advice,
        today=today,
        given=given,
    )
    registrar, pseudonymiser = _registrar(loaded)
    with pseudonymiser:
        stored = registrar.register(person, info)
    refresh_anchor(loaded, registrar.store)
    days = loaded.network.retention.registration_days
    if stored.given_until is None:
        why = f"open case: {days} days after this confirmation; register or import it again"
    elif stored.ends_by_confirmation:
        why = (
            f"the retention term after this confirmation; the case's end {stored.given_until} "
            "is later, so confirm it again before then"
        )
    else:
        why = "the case's end"
    click.echo(f"{person.masked()}: {stored.change.value}; active until {stored.until} ({why})")
    if stored.withdrawn_on is not None:
        click.echo(f"  registered again after a withdrawal by hand on {stored.withdrawn_on}")


@node.command("withdraw")
@config_option
@click.option("--bsn", help=BSN_HELP)
@click.option("--reference", help="Withdraw by your own case reference instead.")
@guard
def node_withdraw(config_path: Path, bsn: str | None, reference: str | None) -> None:
    """End a registration by hand (involvement ended).

    The registration is removed. Only the person's pseudonym and the day are remembered, so a
    later import that still holds the case does not register it again (`node import
    --reactivate` or `node register` does); see docs/operator.md.
    """

    if bool(bsn) == bool(reference):
        raise BadInput("give either --bsn or --reference", hint="one of the two, not both")
    loaded = load_node(config_path)
    days = loaded.network.retention.registration_days
    if reference:
        store = open_anchored_store(loaded)
        removed = store.withdraw(
            reference=reference, actor=getpass.getuser(), remember_days=days, today=_today()
        )
        label = f"reference {reference}"
    else:
        person = read_bsn(bsn or "")
        registrar, pseudonymiser = _registrar(loaded)
        store = registrar.store
        with pseudonymiser:
            removed = registrar.withdraw(person)
        label = person.masked()
    refresh_anchor(loaded, store)
    if removed:
        click.echo(f"{label}: withdrawn ({removed} registration(s) removed)")
        click.echo(
            "  remembered as withdrawn, so an import does not register it again "
            f"(for up to {days} days after the last import that still holds it)"
        )
    else:
        click.echo(f"{label}: no registration found; nothing changed")


def anchor_lines(loaded: Loaded[NodeConfig], store: Any, active: int) -> list[str]:
    """What the node's signed state file says against the database: a refusal to come, or a
    registration count that dropped since it was written."""
    from betrokken.errors import DataLost
    from betrokken.node.anchor import problem

    try:
        anchor = read_own_anchor(loaded)
    except DataLost as exc:
        return [f"  PROBLEM:            {exc.message.splitlines()[-1]}"]
    if anchor is None:
        return ["  anchor:             none yet (the running node writes its state file)"]
    why = problem(anchor, store.trail)
    if why is not None:
        return [
            f"  PROBLEM:            {why[1]}; the node refuses to serve (exit code 11): restore "
            "the backup or `node reset --confirm`"
        ]
    lines = [
        f"  anchor:             {anchor.trail_size:,} trail records, {anchor.active:,} active "
        f"at {anchor.when()}"
    ]
    if active < anchor.active:
        lines.append(
            f"  WARNING:            {anchor.active - active:,} fewer active registrations than at "
            f"{anchor.when()} ({anchor.active:,} -> {active:,}); expiry, withdrawals and --sync "
            "end registrations (see the trail), anything else is a loss"
        )
    return lines


def _names(names: tuple[str, ...], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def import_summary(
    file: Path, table: Table, summary: ImportSummary, sync: bool, finished: bool
) -> list[str]:
    """The import's summary: at most 21 lines, whatever the file held."""
    lines = [f"{file}: {summary.counts()}"]
    lines.append(f"  read:     {table.description}; {summary.lines_read:,} line(s)")
    columns = ", ".join(
        name if header.casefold() == name else f"{name}={header}"
        for name, header in table.columns.items()
    )
    lines.append(f"  columns:  {columns}")
    if table.ignored:
        lines.append(f"  ignored:  {_names(table.ignored)} (not read)")
    if summary.kept_withdrawn:
        lines.append(
            f"  kept withdrawn: {summary.kept_withdrawn} person(s) withdrawn by hand; "
            "--reactivate registers them again"
        )
    if summary.stored and summary.open_until:
        lines.append(
            f"  open cases stay active until {summary.open_until} unless imported again before then"
        )
    if sync:
        if not finished:
            lines.append("  --sync:   nothing ended (the import did not finish)")
        elif summary.sync_skipped:
            lines.append(f"  --sync:   NOT APPLIED: {summary.sync_skipped}")
        else:
            lines.append(
                f"  --sync:   {summary.ended or 0} registration(s) not in the file ended "
                "(withdrawn; recorded in the node's trail)"
            )
        if summary.active_before is not None and finished:
            lines.append(
                f"  changes:  {summary.added:,} added, {summary.updated:,} updated, "
                f"{summary.unchanged:,} confirmed, {summary.ended or 0:,} ended, "
                f"{summary.kept_withdrawn:,} kept withdrawn (of {summary.active_before:,} "
                "active before)"
            )
    if summary.rejected:
        lines.append(f"  rejected ({summary.rejected:,} line(s); nothing of them was stored):")
        lines += ["    " + line for line in summary.problems.lines(max_groups=8)]
    return lines


@node.command("import")
@config_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--columns",
    metavar="FIELD=COLUMN,...",
    help="Which column holds which field, e.g. bsn=BSN,since=Startdatum (adds to [import] "
    "columns in node.toml; FIELD= leaves a field unread).",
)
@click.option(
    "--sync",
    is_flag=True,
    help="The file is the whole current caseload: registrations not in it end.",
)
@click.option(
    "--reactivate",
    is_flag=True,
    help="Register again the persons in the file that were withdrawn by hand.",
)
@click.option(
    "--force",
    is_flag=True,
    help="With --sync: end the registrations not in the file even when they are more than "
    "sync_guard_share (default 10%) of the active ones.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@guard
def node_import(
    config_path: Path,
    file: Path,
    columns: str | None,
    sync: bool,
    reactivate: bool,
    force: bool,
    quiet: bool,
) -> None:
    """Import registrations from a case-system export FILE (CSV or Excel .xlsx).

    Fields: bsn (required), since, until, contact, domain, reference, disclosure; header names
    match in any case, other columns are ignored. Every line confirms its registration. Bad
    lines are skipped and summarised, never half-stored. Exit code 0 when every line was
    stored, 2 when some were rejected, 12 when --sync would end more than sync_guard_share of
    the active registrations (nothing ended; --force goes on), 130 on Ctrl-C, the error's own
    code when the import stopped (re-running the same command finishes it).
    """
    from tqdm import tqdm

    loaded = load_node(config_path)
    configured = loaded.component.import_.columns
    unknown = [name for name in configured if name.lower() not in FIELDS]
    if unknown:
        raise ConfigError(
            f"{loaded.path}: [import] columns names unknown field(s) {', '.join(unknown)}",
            hint="fields: " + ", ".join(FIELDS) + '; e.g. columns = { bsn = "BSN" }',
        )
    mapping = {**configured, **parse_mapping(columns or "")}
    table = open_table(file, FIELDS, required=REQUIRED, mapping=mapping, headers=HEADERS)
    registrar, pseudonymiser = _registrar(loaded)
    summary = ImportSummary()
    bar: Any = tqdm(total=table.size, unit="line", disable=quiet, desc="importing", file=sys.stderr)
    try:
        with pseudonymiser, bar:
            registrar.import_table(
                table,
                summary,
                sync=sync,
                reactivate=reactivate,
                progress=bar.update,
                guard_share=None if force else loaded.component.sync_guard_share,
            )
    except SyncGuarded as exc:
        refresh_anchor(loaded, registrar.store)
        if summary.lines_read:
            click.echo("\n".join(import_summary(file, table, summary, sync, finished=True)))
        click.echo(f"import --sync stopped: {exc.message}", err=True)
        raise
    except (BetrokkenError, KeyboardInterrupt):
        refresh_anchor(loaded, registrar.store)
        click.echo("\n".join(import_summary(file, table, summary, sync, finished=False)))
        last = summary.last_committed_line
        where = f"every line up to line {last:,} is done" if last else "no line was stored"
        click.echo(
            f"import interrupted: {where} ({summary.stored:,} stored, {summary.rejected:,} "
            "rejected); nothing after it was stored.\n"
            "  run the same command again to finish: lines already stored count as unchanged",
            err=True,
        )
        raise
    refresh_anchor(loaded, registrar.store)
    click.echo("\n".join(import_summary(file, table, summary, sync, finished=True)))
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
    days = loaded.network.retention.registration_days
    click.echo(f"node of {org.id} ({org.name}) in network '{loaded.network.name}'")
    click.echo(f"  listens on:         {loaded.component.listen or org.node_address}")
    click.echo(f"  database:           {redacted(loaded.component.database)}")
    expiring = expiry_warning(loaded.tls)  # 30 days ahead (docs/operator.md, certificates)
    if expiring:
        click.echo(f"  WARNING:            {expiring} ({loaded.tls.certificate})")
    click.echo(f"  active:             {status.active} registration(s)")
    for line in anchor_lines(loaded, store, status.active):
        click.echo(line)
    for domain, count in sorted(status.by_domain.items()):
        click.echo(f"    domain {domain}: {count}")
    click.echo(
        f"  ending in {ENDING_SOON_DAYS} days:  {status.ending_unconfirmed} for lack of "
        "confirmation (import or register them again if the cases go on)"
    )
    click.echo(f"  ended, not removed: {status.ended_not_yet_removed}")
    click.echo(
        f"  withdrawn by hand:  {status.withdrawals_remembered} remembered "
        "(an import does not register them again)"
    )
    confirmed = (
        f"{status.last_confirmation:%Y-%m-%d %H:%M:%S} UTC" if status.last_confirmation else "never"
    )
    click.echo(
        f"  last confirmation:  {confirmed}; open cases end {days} days after their last one"
    )
    keys = ", ".join(f"{k} ({v})" for k, v in status.key_ids.items()) or "none"
    click.echo(f"  key ids:            {keys}; this organisation's key: {org.pseudonym_key_id}")
    stale = [k for k in status.key_ids if k != org.pseudonym_key_id]
    if stale:
        click.echo("  WARNING: registrations under an old key id do not match; re-import them")
    click.echo(f"  disclosures made:   {status.disclosures}")
    if status.answers_waiting:
        click.echo(
            f"  answers not yet in the trail: {status.answers_waiting} (the running node records "
            "them within a second; a stopped node at its next start)"
        )
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
    measured = read_measured(clock_path(loaded))
    if measured is None:
        click.echo(
            "  klok coördinator:   nog niet gemeten / the coordinator's clock: not measured yet "
            "(the running node measures it every witness interval)"
        )
    else:
        click.echo(f"  klok coördinator:   {measured.describe()}")
    comparisons = witness.comparisons()
    if comparisons:
        peer, compared_at, own_size, peer_size, outcome = comparisons[0]
        click.echo(
            f"  other nodes:        compared with {peer} at {compared_at:%Y-%m-%d %H:%M:%S} UTC: "
            f"{outcome} (here {own_size} records, there {peer_size})"
        )
        forks = [c[0] for c in comparisons if c[4] == "fork"]
        if forks:
            click.echo(f"                      a different history than: {', '.join(forks)}")
    else:
        click.echo("  other nodes:        not compared yet (the running node does every interval)")
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
    for line in feed_lines(loaded, store):
        click.echo(line)
    from betrokken.health import NODE, peer_lines

    click.echo("  health (mutual TLS):")
    click.echo("\n".join(peer_lines(NODE, loaded)))


def feed_lines(loaded: Loaded[NodeConfig], store: Any) -> list[str]:
    """The feeding systems' health for `node status` (docs/operator.md, 'Feeds')."""
    from betrokken.node.feeds import feed_health

    now = dt.datetime.now(dt.UTC)
    health = feed_health(store, loaded.component.feeds, now)
    if not health:
        return ["  feeds:              none configured ([[feeds]] in node.toml)"]
    lines = ["  feeds:"]
    for feed in health:
        if feed.last_success and feed.lag is not None:
            minutes = int(feed.lag.total_seconds() // 60)
            last = f"last success {feed.last_success:%Y-%m-%d %H:%M} UTC ({minutes} min ago)"
        else:
            last = "no success yet"
        lines.append(
            f"    {feed.system}: {last}; last export {feed.last_added} added, "
            f"{feed.last_confirmed} confirmed, {feed.last_ended} ended, {feed.last_refused} "
            f"line(s) refused ({feed.refused_total} in total)"
        )
        if feed.quiet:
            limit = int((feed.quiet_after or dt.timedelta()).total_seconds() // 60)
            lines.append(
                f"    WARNING: {feed.system} is quiet for "
                f"{int(feed.quiet_for.total_seconds() // 60)} min, longer than "
                f"quiet_after_minutes ({limit}): check its export and `betrokken node watch`"
            )
        if feed.held:
            lines.append(
                f"    WARNING: {feed.held} export(s) of {feed.system} held back: they would end "
                "too many registrations; a beheerder confirms or refuses them in the portal"
            )
    return lines


@node.command("reset")
@config_option
@click.option(
    "--confirm",
    is_flag=True,
    help="Yes: go on with the database as it is now (recorded in the node's trail).",
)
@guard
def node_reset(config_path: Path, confirm: bool) -> None:
    """Go on with the node's database as it is now, after it was refused as empty or older than
    its anchor (exit code 11): the way on when no backup exists.

    Records the reset in the node's trail, with what the anchor said before, and anchors the
    database anew. Import the whole caseload right after: until then the node answers "not
    involved" for every registration it lost. Restoring the backup (`betrokken restore`) is
    better whenever there is one.
    """
    from betrokken.errors import DataLost
    from betrokken.node.anchor import reset_entry

    if not confirm:
        raise BadInput(
            "node reset verandert wat de node als waar aanneemt en vraagt --confirm / node "
            "reset changes what the node takes as true and needs --confirm",
            hint="zet eerst de back-up terug als die er is (betrokken restore) / restore the "
            "backup first if there is one (betrokken restore)",
        )
    loaded = load_node(config_path)
    try:
        old = read_own_anchor(loaded)
    except DataLost:
        old = None  # a damaged state file: the reset writes a new one
    store = open_store(loaded)
    now = dt.datetime.now(dt.UTC)
    store.trail.append([reset_entry(store.organisation, getpass.getuser(), old, now)])
    anchor = refresh_anchor(loaded, store, replace=True)
    assert anchor is not None
    click.echo(
        f"reset vastgelegd in het spoor; de node gaat verder met {anchor.active:,} actieve "
        "registraties. Importeer nu de hele caseload (node import --sync).\n"
        f"reset recorded in the trail; the node goes on with {anchor.active:,} active "
        "registrations. Import the whole caseload now (node import --sync)."
    )
    if old is not None:
        click.echo(
            f"  before: {old.trail_size:,} trail records, {old.active:,} active registrations "
            f"at {old.when()}"
        )


@node.command("expire")
@config_option
@guard
def node_expire(config_path: Path) -> None:
    """Remove ended registrations: past the case's end, or the retention term after their last
    confirmation (the running node also does this hourly). Forget withdrawals past their term."""

    loaded = load_node(config_path)
    store = open_anchored_store(loaded)
    today = _today()
    forgotten = store.forget_withdrawals(today)
    removed = store.expire(today, actor=getpass.getuser())
    refresh_anchor(loaded, store)
    click.echo(f"{removed} ended registration(s) removed; {forgotten} withdrawal(s) forgotten")


@node.command("witness")
@config_option
@click.option(
    "--once", is_flag=True, required=True, help="Check once and exit (serve checks regularly)."
)
@guard
def node_witness(config_path: Path, once: bool) -> None:
    """Check the coordinator's audit log: signature, and consistency with what was accepted.

    Then, as the running node does every interval, it measures the coordinator's clock and checks
    a sample of the records of questions this node answered against what it answered under.

    Exit code 0 when the log is consistent, 8 on a witness alarm (rollback, fork, bad signature,
    a damaged record).
    """
    from betrokken.audit.keys import log_origin

    loaded = load_node(config_path)
    network = loaded.network
    node_store = open_store(loaded)
    store = open_witness(node_store)
    source = CoordinatorLog(network, loaded.tls)
    clock = ClockWatch(clock_path(loaded), store)
    try:
        result = witness_once(
            store, source, network.coordinator.log_key, log_origin(network.name, "coordinator")
        )
        click.echo(result.describe())
        click.echo(check_coordinator(node_store, store, source, clock).describe())
    finally:
        source.close()
    if clock.latest is not None:
        click.echo(clock.latest.describe())


@node.command("witnessed")
@config_option
@guard
def node_witnessed(config_path: Path) -> None:
    """Print the coordinator checkpoints this node accepted (for `betrokken audit verify`)."""
    loaded = load_node(config_path)
    for accepted in open_witness(open_store(loaded)).accepted():
        click.echo(accepted.note, nl=False)
        click.echo("")


@node.command("keys")
@config_option
@click.option(
    "--create", is_flag=True, help="Create the question and envelope key files when missing."
)
@guard
def node_keys(config_path: Path, create: bool) -> None:
    """Print this organisation's public keys, to pin in the network file.

    The question key (the organisation signs its questions with it) and the envelope key (questions
    to its node are sealed to it) stay in their files (mode 0600); only the lines printed here go to
    the network's administrators. Works before the network file lists the organisation.
    """
    import base64

    from betrokken.config.load import load_node_file, resolve_path
    from betrokken.crypto.envelope import EnvelopeKey
    from betrokken.crypto.note import NoteKey
    from betrokken.crypto.question import question_key_name
    from betrokken.errors import ConfigError
    from betrokken.identity.keyfiles import write_envelope_key, write_note_key

    component = load_node_file(config_path)
    network_name = _network_name(config_path, component.network)
    lines = [f"# organisation {component.organisation}: lines for its [[organisations]] entry"]
    if not component.question_key or not component.envelope_key:
        raise ConfigError(
            f"{config_path}: set both 'question_key' and 'envelope_key' (file names) first",
            hint='e.g. question_key = "question.key" and envelope_key = "envelope.key"',
        )
    question_path = resolve_path(config_path, component.question_key)
    envelope_path = resolve_path(config_path, component.envelope_key)
    for path in (question_path, envelope_path):
        if not path.exists() and not create:
            raise ConfigError(f"{path}: not found", hint="pass --create to make the key files")
    if not question_path.exists():
        write_note_key(
            question_path, NoteKey.generate(question_key_name(network_name, component.organisation))
        )
        click.echo(f"created {question_path} (mode 0600)", err=True)
    if not envelope_path.exists():
        write_envelope_key(envelope_path, EnvelopeKey.generate())
        click.echo(f"created {envelope_path} (mode 0600)", err=True)
    import json

    try:
        data = json.loads(question_path.read_text())
        question = NoteKey(name=data["name"], private_key=bytes.fromhex(data["seed"]))
        envelope = EnvelopeKey(bytes.fromhex(envelope_path.read_text().strip()))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"a key file is not a betrokken key ({exc})") from None
    lines.append(f'question_key = "{question.verifier()}"')
    lines.append(f'envelope_key = "{base64.b64encode(envelope.public_bytes()).decode()}"')
    click.echo("\n".join(lines))


def _network_name(config_path: Path, network: str) -> str:
    """The network's name from its file, for the question key's name (or the folder's)."""
    import tomllib

    from betrokken.config.load import resolve_path

    try:
        with resolve_path(config_path, network).open("rb") as handle:
            return str(tomllib.load(handle).get("name", "network"))
    except (OSError, tomllib.TOMLDecodeError):
        return "network"
