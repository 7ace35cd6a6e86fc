"""``betrokken portal serve`` and ``betrokken portal user add|reset|disable|list``."""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import secrets
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from betrokken.clikit import guard
from betrokken.errors import BadInput

if TYPE_CHECKING:
    from betrokken.config.load import LoadedPortal

portal_config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The portal's configuration file (portal.toml, next to the organisation's node.toml).",
)


@click.group("portal")
def portal() -> None:
    """The organisation's web portal for regisseurs, DPOs and beheerders."""


@portal.command("serve")
@portal_config_option
@guard
def serve(config_path: Path) -> None:
    """Serve the portal (HTTPS, or HTTP on loopback behind a reverse proxy) until stopped."""
    from betrokken.config.load import load_portal

    run_portal(load_portal(config_path))


def run_portal(loaded: LoadedPortal, clock: Callable[[], dt.datetime] | None = None) -> None:
    """Serve the portal of ``loaded`` until SIGTERM or SIGINT (then exit code 0); ``clock`` is the
    time its logins and sessions are measured by (the real one unless a test gives another)."""
    import uvicorn

    from betrokken.clock import utcnow
    from betrokken.portal.app import build_portal, create_app

    app = create_app(build_portal(loaded, clock or utcnow))
    host, port = loaded.portal.listen.rsplit(":", 1)
    tls = loaded.portal.tls
    from betrokken.service import configure_logging

    # Every line (uvicorn's access log too) through the escaping formatter: a path with a
    # newline in it cannot forge a log line. Paths never hold a BSN (forms are POSTed).
    configure_logging()
    logging.getLogger("uvicorn.access").addFilter(without_query)
    scheme = "https" if tls else "http"
    click.echo(f"portal of {loaded.node.component.organisation} on {scheme}://{host}:{port}/")
    # uvicorn stops gracefully on SIGTERM/SIGINT and then raises the signal again under the
    # handler it found: with this one the process ends with exit code 0 like every other
    # betrokken service, not with "killed by SIGTERM".
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _stopped)
    uvicorn.run(
        app,
        host=host.strip("[]"),
        port=int(port),
        ssl_certfile=tls.certificate if tls else None,
        ssl_keyfile=tls.private_key if tls else None,
        server_header=False,
        proxy_headers=False,
        log_config=None,
        log_level="info",
    )


def without_query(record: logging.LogRecord) -> bool:
    """uvicorn's access-log line without the query string: an address may carry what a form
    should have POSTed (``/vraag?bsn=...``), and P1 holds for every log (the path is kept, the
    query becomes ``?...``)."""
    args = record.args
    if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
        record.args = (*args[:2], args[2].split("?", 1)[0] + "?...", *args[3:])
    return True


def _stopped(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


@portal.group("user")
def user() -> None:
    """Local portal accounts (password + TOTP code); changes are records in the trail."""


def _store(config_path: Path):  # type: ignore[no-untyped-def]

    from betrokken.audit.trail import open_trail
    from betrokken.config.load import load_portal
    from betrokken.portal.users import UserStore

    loaded = load_portal(config_path)
    trail, _ = open_trail(loaded.node)
    org = loaded.node.network.organisation(loaded.node.component.organisation)
    assert org is not None
    store = UserStore(
        trail.engine,
        f"betrokken {org.name}",
    )
    return loaded, trail, store


def _record(trail, organisation: str, action: str, account: str, roles: str, purposes: str):  # type: ignore[no-untyped-def]
    from betrokken.audit.record import AuditEntry, Event
    from betrokken.clock import utcnow

    entry = AuditEntry(
        event=Event.ROLE_CHANGE,
        at=utcnow(),
        organisation=organisation,
        user=getpass.getuser(),
        role="beheerder",
        access_point="command line",
        reason=action,
        details={"account": account, "roles": roles, "purposes": purposes},
    )
    with trail.engine.begin() as conn:
        trail.append([entry], conn)


def _password(generate: bool) -> str:
    if generate:
        return secrets.token_urlsafe(15)
    if sys.stdin is not None and not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            raise BadInput("no password on standard input", hint="or use --generate-password")
        return line
    first = click.prompt("Password", hide_input=True, err=True)
    again = click.prompt("Password again", hide_input=True, err=True)
    if first != again:
        raise BadInput("the two passwords differ", hint="type the same password twice")
    return str(first)


def _show_enrolment(username: str, password: str | None, secret: str, uri: str) -> None:
    click.echo(f"account {username}")
    if password:
        click.echo(f"  password:    {password}   (shown once; hand it over in person)")
    click.echo(f"  TOTP secret: {secret}   (shown once)")
    click.echo(f"  TOTP URI:    {uri}")
    click.echo("  the user adds the secret (or the URI as a QR code) to an authenticator app")


@user.command("add")
@portal_config_option
@click.argument("username")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    help="regisseur, dpo or beheerder; repeat for more than one.",
)
@click.option(
    "--purpose",
    "purposes",
    multiple=True,
    help="A purpose this regisseur may ask (repeat); none: every purpose the network allows.",
)
@click.option("--name", "display_name", default="", help="The person's name as shown.")
@click.option("--generate-password", is_flag=True, help="Make a random password and print it once.")
@guard
def user_add(
    config_path: Path,
    username: str,
    roles: tuple[str, ...],
    purposes: tuple[str, ...],
    display_name: str,
    generate_password: bool,
) -> None:
    """Add a local account. The password is read from standard input (or prompted for)."""
    loaded, trail, store = _store(config_path)
    _check_purposes(loaded, purposes)
    password = _password(generate_password)
    enrolment = store.add(username, password, roles, purposes, display_name)
    _record(
        trail, loaded.node.component.organisation, "account added", username,
        ",".join(roles), ",".join(purposes),
    )  # fmt: skip
    _show_enrolment(
        username, password if generate_password else None, enrolment.totp_secret, enrolment.uri
    )


def _check_purposes(loaded, purposes: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    known = {p.id for p in loaded.node.network.purposes}
    unknown = [p for p in purposes if p not in known]
    if unknown:
        raise BadInput(
            f"the network has no purpose {', '.join(unknown)}",
            hint="known purposes: " + ", ".join(sorted(known)),
        )


@user.command("reset")
@portal_config_option
@click.argument("username")
@click.option("--role", "roles", multiple=True, help="Replace the roles (repeat).")
@click.option("--purpose", "purposes", multiple=True, help="Replace the purposes (repeat).")
@click.option("--new-password", is_flag=True, help="Set a new password (stdin or prompt).")
@click.option("--generate-password", is_flag=True, help="Make a random new password.")
@click.option("--keep-code", is_flag=True, help="Keep the TOTP secret (default: a new one).")
@guard
def user_reset(
    config_path: Path,
    username: str,
    roles: tuple[str, ...],
    purposes: tuple[str, ...],
    new_password: bool,
    generate_password: bool,
    keep_code: bool,
) -> None:
    """Unlock and re-enable an account; optionally a new password, code, roles or purposes."""
    loaded, trail, store = _store(config_path)
    _check_purposes(loaded, purposes)
    password = _password(generate_password) if (new_password or generate_password) else None
    enrolment, before, after = store.reset(
        username,
        password,
        roles=roles or None,
        purposes=purposes or None,
        new_code=not keep_code,
    )
    _record(
        trail, loaded.node.component.organisation, "account reset", username,
        ",".join(after.roles), ",".join(after.purposes),
    )  # fmt: skip
    if before.roles != after.roles:
        click.echo(f"roles: {','.join(before.roles)} -> {','.join(after.roles)}")
    if keep_code and not password:
        click.echo(f"account {username} unlocked and enabled")
        return
    _show_enrolment(
        username,
        password if generate_password else None,
        enrolment.totp_secret if not keep_code else "(unchanged)",
        enrolment.uri if not keep_code else "(unchanged)",
    )


@user.command("disable")
@portal_config_option
@click.argument("username")
@guard
def user_disable(config_path: Path, username: str) -> None:
    """Disable an account (it can no longer log in; its records stay)."""
    loaded, trail, store = _store(config_path)
    before = store.disable(username)
    _record(
        trail, loaded.node.component.organisation, "account disabled", username,
        ",".join(before.roles), ",".join(before.purposes),
    )  # fmt: skip
    click.echo(f"account {username} disabled")


@user.command("list")
@portal_config_option
@guard
def user_list(config_path: Path) -> None:
    """The local accounts with their roles and state (never a secret)."""
    from betrokken.clock import utcnow
    from betrokken.portal.i18n import local_time

    _, _, store = _store(config_path)
    accounts = store.accounts()
    if not accounts:
        click.echo("no local accounts; add one with `betrokken portal user add`")
    now = utcnow()
    for account in accounts:
        state = "disabled" if account.disabled else "active"
        if account.locked_until and account.locked_until > now:
            state = f"locked until {local_time(account.locked_until)}"
        purposes = ",".join(account.purposes) or "(all the network allows)"
        click.echo(
            f"{account.username:<24} {','.join(account.roles):<28} {state:<24} purposes {purposes}"
        )
