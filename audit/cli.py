"""``betrokken audit ...``: the DPO's commands. Every use is recorded in the log it reads."""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import io
import json
from pathlib import Path
from typing import Any

import click

from betrokken.audit.access import (
    Filter,
    OpenedLog,
    gaps,
    open_log,
    record_access,
    select_records,
    unknown_value,
)
from betrokken.audit.record import AuditEntry
from betrokken.clikit import guard, read_bsn
from betrokken.errors import BadInput, VerificationError, escape_text, shown

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
MAX_FILTER_BYTES = 128

config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Configuration of the component whose log to read: coordinator, node or key service.",
)
user_option = click.option(
    "--user", default=None, help="Who is reading (recorded; default: your account name)."
)


def _date(value: str | None, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise BadInput(f"--{name} '{value}' is not a date (use YYYY-MM-DD)") from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


@click.group()
def audit() -> None:
    """The DPO's tools: verify the log, read it, answer access requests, report, prune."""


@audit.command("verify")
@config_option
@click.option(
    "--witnessed",
    "witnessed_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file of checkpoints a node accepted (`betrokken node witnessed`); repeatable.",
)
@user_option
@guard
def audit_verify(config_path: Path, witnessed_files: tuple[Path, ...], user: str | None) -> None:
    """Recompute the whole tree, check every signature and every witnessed checkpoint.

    Exit code 0 only when everything holds; 8 when anything was altered, removed or reordered.
    """
    from betrokken.audit.verify import split_notes, verify_log

    opened = open_log(config_path)
    notes: list[str] = []
    for path in witnessed_files:
        if not path.is_file():
            raise BadInput(f"{path}: file not found")
        found = split_notes(path.read_text(errors="replace"))
        if not found:
            raise BadInput(
                f"{path}: no signed checkpoint found",
                hint="pass the output of `betrokken node witnessed --config node.toml`",
            )
        notes += found
    record_access(opened, user or getpass.getuser(), "verify", {"witnessed": str(len(notes))})
    result = verify_log(opened.log, opened.verifier, notes, opened.network)
    click.echo(f"{opened.log.origin}: {result.summary()}")
    if not result.ok:
        raise VerificationError(
            f"the audit log of {opened.component} does not verify (first bad record "
            f"{result.first_bad_index})",
            hint="keep the database as it is (evidence) and tell the DPOs of the network",
        )


def _writable(path: Path | None) -> None:
    """Fail before any work (or any record) when an output file cannot be written."""
    if path is not None and not path.parent.is_dir():
        raise BadInput(
            f"{path}: the folder {path.parent} does not exist", hint="create it or choose another"
        )


def _row(index: int, entry: AuditEntry) -> dict[str, Any]:
    return {"index": index, **entry.to_json()}


@audit.command("log")
@config_option
@click.option("--since", help="From this date (YYYY-MM-DD, UTC).")
@click.option("--until", "until_", help="Before this date (YYYY-MM-DD, UTC).")
@click.option("--organisation", help="Requesting organisation.")
@click.option("--for-user", "for_user", help="Records of this user.")
@click.option("--purpose", help="Purpose (doel).")
@click.option("--case", help="Case reference.")
@click.option("--outcome", help="complete, partial, refused, or an outcome such as involved.")
@click.option("--event", "events", multiple=True, help="Event type(s), e.g. search, refusal.")
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json"]), default="text")
@click.option(
    "--delimiter",
    default=";",
    show_default=True,
    help="CSV field separator: ';' (Dutch Excel), ',' or 'tab'.",
)
@user_option
@guard
def audit_log(
    config_path: Path,
    since: str | None,
    until_: str | None,
    organisation: str | None,
    for_user: str | None,
    purpose: str | None,
    case: str | None,
    outcome: str | None,
    events: tuple[str, ...],
    fmt: str,
    delimiter: str,
    user: str | None,
) -> None:
    """List records, filtered; as text, CSV or JSON.

    CSV uses ';' by default (what Excel expects in a Dutch locale) and neutralises cells that a
    spreadsheet would run as a formula (starting with = + - @, a tab or a carriage return).
    """
    separator = _delimiter(delimiter)
    for name, value in (("--for-user", for_user), ("--purpose", purpose), ("--case", case)):
        _printable(name, value)
    since_at, until_at = _date(since, "since"), _date(until_, "until")
    opened = open_log(config_path)
    _known(opened, organisation, outcome, events)
    wanted = Filter(
        since=since_at,
        until=until_at,
        organisation=organisation,
        user=for_user,
        purpose=purpose,
        case=case,
        outcome=outcome,
        events=set(events),
    )
    record_access(opened, user or getpass.getuser(), "log", wanted.describe())
    damaged: list[tuple[int, str]] = []
    rows = [_row(i, e) for i, e in select_records(opened.log, wanted, damaged)]
    damaged = sorted(damaged + gaps(opened.log))
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif fmt == "csv":
        buffer = io.StringIO()
        columns = [
            "index",
            "at",
            "event",
            "organisation",
            "user",
            "acted_for",
            "role",
            "access_point",
            "purpose",
            "legal_basis",
            "answer_id",
            "cases",
            "fingerprints",
            "completeness",
            "reason",
        ]
        writer = csv.DictWriter(
            buffer, fieldnames=columns, extrasaction="ignore", delimiter=separator
        )
        writer.writeheader()
        inner = "," if separator == ";" else ";"
        for row in rows:
            row["cases"] = inner.join(s["case"] for s in row["subjects"])
            row["fingerprints"] = inner.join(s["fingerprint"] for s in row["subjects"])
            writer.writerow({k: neutralise(v) for k, v in row.items() if k in columns})
        click.echo(buffer.getvalue(), nl=False)
    else:
        for row in rows:
            cases = ",".join(s["case"] for s in row["subjects"] if s["case"])
            prints = ",".join(s["fingerprint"] for s in row["subjects"])
            click.echo(
                escape_text(
                    f"{row['index']:>6} {row['at']} {row['event']:<19} "
                    f"{row['organisation'] or '-'} user={row['user'] or '-'} "
                    f"purpose={row['purpose'] or '-'} case={cases or '-'} "
                    f"subjects={prints or '-'} {row['completeness'] or row['reason']}"
                )
            )
        click.echo(f"{len(rows)} record(s)", err=True)
    if damaged:
        for index, problem in damaged:
            click.echo(f"DAMAGED record {index}: {problem}", err=True)
        click.echo(
            f"{len(damaged)} damaged record(s) not shown; every other record is. "
            "Run `betrokken audit verify` and see docs/dpo.md, 'A damaged log'",
            err=True,
        )
        raise SystemExit(VerificationError.exit_code)


def neutralise(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: one that would start a formula (= + - @, a tab,
    a carriage return) gets a leading apostrophe (OWASP, "CSV injection")."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _delimiter(value: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "semicolon": ";", "comma": ","}
    separator = named.get(value.lower(), value)
    if separator not in (";", ",", "\t", "|"):
        raise BadInput(
            f"--delimiter '{shown(value)}' is not a separator betrokken writes",
            hint="use ';' (Dutch Excel), ',', '|' or 'tab'",
        )
    return separator


def _printable(option: str, value: str | None) -> None:
    if value is None:
        return
    if not value.isprintable() or len(value.encode("utf-8", "replace")) > MAX_FILTER_BYTES:
        raise BadInput(
            f"{option} '{shown(value)}' must be printable text of at most {MAX_FILTER_BYTES} bytes",
            hint="type the value as it appears in the log",
        )


def _known(
    opened: OpenedLog, organisation: str | None, outcome: str | None, events: tuple[str, ...]
) -> None:
    """Refuse a filter value no record can hold, listing the ones that can."""
    wanted = Filter(organisation=organisation, outcome=outcome, events=set(events))
    found = unknown_value(wanted, opened.network)
    if found is None:
        return
    name, value, allowed = found
    what = {
        "event": "is not an event of the log",
        "outcome": "is not an outcome",
        "organisation": f"is not an organisation of network '{opened.network.name}'",
    }[name]
    raise BadInput(f"--{name} '{shown(value)}' {what}", hint="use one of: " + ", ".join(allowed))


@audit.command("subject")
@config_option
@click.option(
    "--bsn",
    required=True,
    help="The person's BSN, or '-' to read it from standard input (pseudonymised; never stored).",
)
@click.option(
    "--via",
    "via",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A node configuration whose organisation pseudonymises the BSN "
    "(needed for the coordinator's and key service's logs).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the answer as a self-contained HTML page (for the reply letter).",
)
@user_option
@guard
def audit_subject(
    config_path: Path, bsn: str, via: Path | None, out: Path | None, user: str | None
) -> None:
    """A citizen's access request: every record about this person in this log."""
    from betrokken.audit.subject import (
        Letterhead,
        PersonKeys,
        find_records,
        render_html,
        render_text,
        subject_lines,
    )
    from betrokken.config.load import load_node
    from betrokken.crypto.bsn import parse_bsn
    from betrokken.keyservice.client import ACCESS_REQUEST, Pseudonymiser

    person = parse_bsn(read_bsn(bsn))
    _writable(out)
    opened = open_log(config_path)
    if opened.kind == "node":
        network, tls, asker = opened.network, opened.tls, opened.component
    elif via is None:
        raise BadInput(
            "the BSN must be pseudonymised by an organisation",
            hint="pass --via with the node configuration of your own organisation",
        )
    else:
        node = load_node(via)
        network, tls, asker = node.network, node.tls, node.component.organisation
    everyone = [o.id for o in network.organisations]
    # One person, under every organisation's key: one key-service call of its own use (the
    # access request's small daily quota), recorded in the key service's log.
    with Pseudonymiser(network, tls, asker) as pseudonymiser:
        found = pseudonymiser.pseudonymise_under([person], everyone, ACCESS_REQUEST, role="dpo")
    keys = PersonKeys(
        {org: ps[0].value for org, ps in found.items()},
        frozenset(ps[0].fingerprint for ps in found.values()),
    )
    own = found[asker][0]
    reader = user or getpass.getuser()
    record_access(opened, reader, "subject", {"fingerprint": own.fingerprint})
    records = find_records(opened.log, keys)
    lines = subject_lines(records, keys, opened.network)
    head = Letterhead(
        masked_bsn=person.masked(),
        fingerprint=own.fingerprint,
        log_name=opened.log.origin,
        produced_at=dt.datetime.now(dt.UTC),
        produced_by=reader,
    )
    click.echo(render_text(lines, head), nl=False)
    if out is not None:
        out.write_text(render_html(lines, head))
        click.echo(f"written to {out}", err=True)


@audit.command("report")
@config_option
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML file to write.",
)
@click.option("--since", help="From this date (YYYY-MM-DD, UTC).")
@user_option
@guard
def audit_report(config_path: Path, out: Path, since: str | None, user: str | None) -> None:
    """Write a self-contained HTML report with charts and the anomalies a DPO looks for."""
    from betrokken.audit.report import IndexedEntry, render_report, settings_for
    from betrokken.audit.verify import verify_log

    _writable(out)
    opened = open_log(config_path)
    record_access(opened, user or getpass.getuser(), "report", {"since": since or ""})
    start = _date(since, "since")
    entries = []
    damaged: list[tuple[int, str]] = []
    for record in opened.log.records():
        entry, problem = record.checked()
        if problem is not None:
            damaged.append((record.index, problem))
        elif start is None or entry is None or entry.at >= start:
            entries.append(IndexedEntry(record.index, entry))
    damaged = sorted(damaged + gaps(opened.log))
    verification = verify_log(opened.log, opened.verifier, network=opened.network).summary()
    if damaged:
        verification += "; damaged records not in this report: " + "; ".join(
            f"{index}: {problem}" for index, problem in damaged[:20]
        )
        if len(damaged) > 20:
            verification += f"; and {len(damaged) - 20} more"
    settings = settings_for(opened.network, accounts=_accounts(opened, entries))
    page = render_report(
        entries,
        title=f"betrokken audit report: {opened.log.origin}",
        generated_at=dt.datetime.now(dt.UTC),
        settings=settings,
        verification=verification,
    )
    out.write_text(page)
    click.echo(f"report of {len(entries)} records written to {out}")
    if damaged:
        for index, problem in damaged:
            click.echo(f"DAMAGED record {index}: {problem}", err=True)
        click.echo(
            f"{len(damaged)} damaged record(s) named in the report, not counted in it",
            err=True,
        )
        raise SystemExit(VerificationError.exit_code)


def _accounts(opened: OpenedLog, entries: list[Any]) -> frozenset[str] | None:
    """For an organisation's trail: the names people log in to its portal with (its accounts,
    and whoever logged in through its identity provider); elsewhere None (not known)."""
    import sqlalchemy as sa

    if opened.kind != "node":
        return None
    try:
        with opened.log.engine.connect() as conn:
            names = {row[0] for row in conn.execute(sa.text("select username from portal_users"))}
    except sa.exc.SQLAlchemyError:
        return None
    names |= {
        e.entry.user for e in entries if e.entry is not None and e.entry.event.value == "login"
    }
    return frozenset(names)


@audit.command("follow-up")
@config_option
@click.option("--json", "as_json", is_flag=True, help="The counts as JSON, to share.")
@click.option(
    "--combine",
    "combined",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Another organisation's counts (JSON); with it, the network's rates are shown.",
)
@user_option
@guard
def audit_follow_up(
    config_path: Path, as_json: bool, combined: tuple[Path, ...], user: str | None
) -> None:
    """How many hits of this organisation's questions were followed up in time, per partner and
    purpose (numbers only); with --combine, the network's rates per organisation and purpose."""
    import json

    from betrokken.audit.followup import (
        combine,
        counts_document,
        describe,
        hits_in,
        rates,
    )
    from betrokken.errors import BadInput

    opened = open_log(config_path)
    if opened.kind != "node":
        raise BadInput(
            f"{config_path}: hits and their follow-up are in an organisation's own trail",
            hint="pass the organisation's node.toml",
        )
    record_access(opened, user or getpass.getuser(), "follow-up", {"combine": str(len(combined))})
    settings = opened.network.after_the_hit
    today = dt.datetime.now(dt.UTC).date()
    # Damaged records are left out here; `audit verify` and `audit report` name them.
    entries = [e for e, problem in (r.checked() for r in opened.log.records()) if e and not problem]
    own = rates(hits_in(entries), settings.follow_up_working_days, today)
    document = counts_document(opened.organisation, own, settings.follow_up_working_days, today)
    if combined:
        documents = [document]
        for path in combined:
            try:
                documents.append(json.loads(path.read_text()))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise BadInput(
                    f"{path}: not JSON",
                    hint="make it with `betrokken audit follow-up --json` at that organisation",
                ) from None
        network = combine(documents)
        click.echo(
            describe(
                network,
                settings.follow_up_working_days,
                settings.follow_up_goal_percent,
                "organisation",
            ),
            nl=False,
        )
        return
    if as_json:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    click.echo(
        describe(
            own, settings.follow_up_working_days, settings.follow_up_goal_percent, "partner found"
        ),
        nl=False,
    )


@audit.command("prune")
@config_option
@user_option
@guard
def audit_prune(config_path: Path, user: str | None) -> None:
    """Empty records older than the retention term (network file: retention.audit_years).

    Leaf hashes are kept, so `audit verify` still passes and the report shows the pruned range.
    The coordinator also does this daily while it runs.
    """
    from betrokken.audit.retention import prune_expired

    opened = open_log(config_path, writable=True)
    reader = user or getpass.getuser()
    record_access(opened, reader, "prune", {})
    years = opened.network.retention.audit_years
    result = prune_expired(opened.log, years, dt.datetime.now(dt.UTC), reader)
    click.echo(result.describe())
