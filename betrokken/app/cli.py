"""The ``betrokken`` command. Each service folder brings its own commands; this joins them."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path

import click

from betrokken.clikit import DEBUG_ENV, as_error, config_option, escape_lines, guard
from betrokken.lazygroup import LazyGroup

# Each service folder's commands, imported when used (betrokken/lazygroup.py): the name, where
# the command lives, and its one-line help for `betrokken --help` (tests/test_cli_lazy.py keeps it
# true).
LAZY_COMMANDS = {
    "network": ("betrokken.app.network", "network", "Create and check a network."),
    "keyservice": (
        "betrokken.keyservice.cli",
        "keyservice",
        "The key service (holds the OPRF key; evaluates blinded elements).",
    ),
    "coordinator": (
        "betrokken.coordinator.cli",
        "coordinator",
        "The coordinator (a blind relay between the asking organisation and the nodes).",
    ),
    "node": (
        "betrokken.app.nodecli",
        "node",
        "A partner's node: its registrations and the lookups it answers.",
    ),
    "query": (
        "betrokken.requester.cli",
        "query",
        "Ask whether other organisations are involved (betrokken) with a person.",
    ),
    "collect": (
        "betrokken.requester.cli",
        "collect",
        "Collect the late answers of deferred questions from the coordinator's mailbox.",
    ),
    "portal": (
        "betrokken.portal.cli",
        "portal",
        "The organisation's web portal for regisseurs, DPOs and beheerders.",
    ),
    "audit": (
        "betrokken.audit.cli",
        "audit",
        "The DPO's tools: verify the log, read it, answer access requests, report, prune.",
    ),
}


@click.group(cls=LazyGroup, lazy_commands=LAZY_COMMANDS)
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
@click.option(
    "--keep-running",
    is_flag=True,
    help="Keep the services and the web portals running after the demo, until Ctrl-C or SIGTERM.",
)
@click.option(
    "--only-start",
    is_flag=True,
    help="Start the network, its registrations and the web portals and keep them running "
    "(as --keep-running), without walking through the steps: to try the portals yourself.",
)
@guard
def demo(
    directory: Path | None,
    per_node: int,
    base_port: int | None,
    keep_running: bool,
    only_start: bool,
) -> None:
    """Build a six-organisation network on loopback, fill it, and show what it answers."""
    import signal

    from betrokken.app.demo import run_demo

    def terminate(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # the same way out as Ctrl-C: every service started is stopped

    signal.signal(signal.SIGTERM, terminate)

    def wait() -> None:
        import time

        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("stopping")

    if not run_demo(
        directory,
        per_node=per_node,
        base_port=base_port,
        out=click.echo,
        keep_running=keep_running or only_start,
        only_start=only_start,
        wait=wait,
    ):
        raise SystemExit(1)


@main.group("db")
def db() -> None:
    """A component's database schema: which revision it is at, and upgrading it."""


@db.command("upgrade")
@config_option
@click.option(
    "--no-backup",
    is_flag=True,
    help="Do not copy a SQLite database before upgrading it (PostgreSQL: back up with pg_dump).",
)
@guard
def db_upgrade(config_path: Path, no_backup: bool) -> None:
    """Bring the database of the component configured in --config to the current schema.

    Stop the component first. A SQLite database is copied next to itself before anything
    changes (SQLite's online backup); back a PostgreSQL database up with pg_dump first. Safe to
    run again: a current database is left alone.
    """
    from betrokken.app.ops import db_upgrade as upgrade

    report = upgrade(config_path, backup=not no_backup)
    click.echo("\n".join(report.lines()))


@db.command("current")
@config_option
@guard
def db_current(config_path: Path) -> None:
    """Show the schema revision of the component's database. Exit code 0 when it is current, 5
    when it needs `betrokken db upgrade` (or belongs to another version or component)."""
    from betrokken.app.ops import db_current as current
    from betrokken.migrations import Status

    component, database, found = current(config_path)
    click.echo(f"{component} database {database}: {found.describe()}")
    if found.status not in (Status.CURRENT, Status.EMPTY):
        click.echo(f"  what to do: betrokken db upgrade --config {config_path}", err=True)
        raise SystemExit(5)


@main.command("status")
@config_option
@click.pass_context
@guard
def status(ctx: click.Context, config_path: Path) -> None:
    """What a component holds and whether it and its peers serve (any component's file).

    For a node this is `betrokken node status`. Counts only: never a person's data.
    """
    from betrokken.app.ops import component_of, load_component, status_lines
    from betrokken.health import NODE

    if component_of(config_path) == NODE:
        from betrokken.node.cli import node_status

        ctx.invoke(node_status, config_path=config_path)
        return
    component, loaded = load_component(config_path)
    click.echo("\n".join(status_lines(component, loaded)))


@main.command("backup")
@config_option
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@guard
def backup_command(config_path: Path, target: Path) -> None:
    """Copy a component's database to TARGET while it runs, and check the copy.

    SQLite: the online backup API, then an integrity check, the audit log's head and its latest
    signed checkpoint recomputed. PostgreSQL: pg_dump, checked by pg_restore --list. Schedule it
    (docs/operator.md, 'Recovery'); keep the copies elsewhere.
    """
    from betrokken.app.backup import backup

    click.echo("\n".join(backup(config_path, target)))


@main.command("restore")
@config_option
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@guard
def restore_command(config_path: Path, source: Path) -> None:
    """Put the backup SOURCE back as a stopped component's database.

    The backup is checked first; the database that was there is kept aside. A node records the
    restore in its trail and anchors the restored database; then import the case system's
    export again, so what changed since the backup comes back.
    """
    from betrokken.app.backup import restore

    click.echo("\n".join(restore(config_path, source)))


@main.command("doctor")
@config_option
@guard
def doctor(config_path: Path) -> None:
    """Check a component's configuration, certificates, key files, clock, database and peers.

    Changes nothing. Prints OK, WARNING or PROBLEM per check with what to fix. Exit code 0 when
    all is OK, 1 with warnings only, 2 with a problem (as monitoring plugins do).
    """
    from betrokken.app.doctor import diagnose, exit_code

    findings = diagnose(config_path)
    for finding in findings:
        click.echo("\n".join(finding.lines()))
    code = exit_code(findings)
    problems = sum(f.level == "PROBLEM" for f in findings)
    warnings = sum(f.level == "WARNING" for f in findings)
    click.echo(
        f"{len(findings)} check(s): {problems} problem(s), {warnings} warning(s)"
        if code
        else f"{len(findings)} check(s): all OK"
    )
    raise SystemExit(code)


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
