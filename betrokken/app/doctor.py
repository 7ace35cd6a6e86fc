"""``betrokken doctor --config FILE``: what is wrong with this component, and what to fix.

Works on any component's file (node, coordinator, key service) and changes nothing: it creates no
database, writes no record (the write test is rolled back). Each check gives OK, WARNING or
PROBLEM with what to do. Exit code (the Nagios/Icinga convention, so monitoring can run it):
0 all OK, 1 warnings only, 2 at least one problem.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from betrokken.app.ops import (
    CERTIFICATE_WARNING_DAYS,
    component_of,
    load_component,
    raw_engine,
    sqlite_path,
)
from betrokken.clock import utcnow
from betrokken.config.load import Loaded
from betrokken.errors import BetrokkenError
from betrokken.health import COORDINATOR, KEYSERVICE, NODE, peer_health

OK, WARNING, PROBLEM = "OK", "WARNING", "PROBLEM"
DISK_WARNING_BYTES = 1 << 30  # 1 GiB


@dataclass(frozen=True)
class Finding:
    level: str
    check: str
    message: str
    fix: str = ""

    def lines(self) -> list[str]:
        lines = [f"{self.level:<8} {self.check}: {self.message}"]
        if self.fix:
            lines.append(f"{'':<8} fix: {self.fix}")
        return lines


def exit_code(findings: list[Finding]) -> int:
    levels = {f.level for f in findings}
    return 2 if PROBLEM in levels else 1 if WARNING in levels else 0


def diagnose(config: Path) -> list[Finding]:
    try:
        component = component_of(config)
        _, loaded = load_component(config)
    except BetrokkenError as exc:
        return [Finding(PROBLEM, "configuration", exc.message, exc.hint or "")]
    network = loaded.network
    what = {NODE: "node", COORDINATOR: "coordinator", KEYSERVICE: "key service"}[component]
    findings = [
        Finding(OK, "configuration", f"{config} is the {what}'s file of network '{network.name}'")
    ]
    for check in (_certificates, _key_files, _clock, _database, _peers):
        try:
            findings += list(check(component, loaded))
        except Exception as exc:  # a check that breaks is reported, the others still run
            findings.append(
                Finding(PROBLEM, check.__name__.strip("_"), f"could not be checked ({exc})")
            )
    return findings


# --- certificates -------------------------------------------------------------------------------
def _expected(component: str, loaded: Loaded[Any]) -> tuple[Any, str | None]:
    from betrokken.identity.names import Identity, Role

    network = loaded.network
    if component == NODE:
        org = network.organisation(loaded.component.organisation)
        assert org is not None
        return Identity(Role.ORGANISATION, org.id), org.server_name if org.node_address else None
    if component == COORDINATOR:
        return Identity(Role.COORDINATOR), network.coordinator.tls_name
    return Identity(Role.KEYSERVICE), network.keyservice.tls_name


def _certificates(component: str, loaded: Loaded[Any]) -> Iterator[Finding]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from betrokken.identity.rpc import check_own_certificate

    tls = loaded.tls
    try:
        cert = x509.load_pem_x509_certificate(Path(tls.certificate).read_bytes())
        ca = x509.load_pem_x509_certificate(Path(tls.ca).read_bytes())
    except (OSError, ValueError) as exc:
        yield Finding(PROBLEM, "certificate", f"cannot be read ({exc})", "check the tls paths")
        return
    now = utcnow()
    left = cert.not_valid_after_utc - now
    if now < cert.not_valid_before_utc:
        yield Finding(
            PROBLEM,
            "certificate dates",
            f"{tls.certificate} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            "check this machine's clock, or use a certificate valid now",
        )
    elif left.total_seconds() <= 0:
        yield Finding(
            PROBLEM,
            "certificate dates",
            f"{tls.certificate} expired on {cert.not_valid_after_utc:%Y-%m-%d}",
            "renew it (docs/operator.md, 'Certificate rotation')",
        )
    elif left.days < CERTIFICATE_WARNING_DAYS:
        yield Finding(
            WARNING,
            "certificate dates",
            f"{tls.certificate} expires in {left.days} day(s), on "
            f"{cert.not_valid_after_utc:%Y-%m-%d}",
            "renew it now (docs/operator.md, 'Certificate rotation')",
        )
    else:
        yield Finding(
            OK,
            "certificate dates",
            f"valid until {cert.not_valid_after_utc:%Y-%m-%d} ({left.days} days)",
        )
    identity, server_name = _expected(component, loaded)
    try:
        check_own_certificate(tls, identity, server_name)
        names = f" and the name {server_name}" if server_name else ""
        yield Finding(OK, "certificate identity", f"{identity.uri}{names}")
    except BetrokkenError as exc:  # another identity, a name missing, or a key that is not its
        yield Finding(PROBLEM, "certificate identity", exc.message, exc.hint or "")
    try:
        key = serialization.load_pem_private_key(Path(tls.private_key).read_bytes(), None)
        same = key.public_key().public_bytes(  # type: ignore[union-attr]
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) == cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (OSError, ValueError, TypeError) as exc:
        yield Finding(PROBLEM, "private key", f"{tls.private_key} cannot be read ({exc})")
    else:
        if same:
            yield Finding(OK, "private key", "belongs to the certificate")
        else:
            yield Finding(
                PROBLEM,
                "private key",
                f"{tls.private_key} does not belong to {tls.certificate}",
                "point tls.private_key at the key the certificate was issued for",
            )
    try:
        cert.verify_directly_issued_by(ca)
        ca_left = ca.not_valid_after_utc - now
        if ca_left.days < CERTIFICATE_WARNING_DAYS:
            yield Finding(
                WARNING,
                "network CA",
                f"{tls.ca} expires on {ca.not_valid_after_utc:%Y-%m-%d}",
                "agree a new CA bundle with the network's administrators",
            )
        else:
            yield Finding(OK, "network CA", "the certificate is issued by the CA in tls.ca")
    except (ValueError, TypeError, Exception) as exc:  # InvalidSignature has no common base
        yield Finding(
            PROBLEM,
            "network CA",
            f"{tls.certificate} is not issued by the CA in {tls.ca} ({type(exc).__name__})",
            "use the network's CA bundle in tls.ca, or a certificate that CA issued",
        )


# --- key files ----------------------------------------------------------------------------------
def _key_files(component: str, loaded: Loaded[Any]) -> Iterator[Finding]:
    from betrokken.audit.keys import read_log_key
    from betrokken.identity.keyfiles import read_envelope_key, read_note_key

    network = loaded.network
    c = loaded.component
    files: list[tuple[str, Path, Callable[[Path], object] | None]] = [
        ("TLS private key", Path(loaded.tls.private_key), None)
    ]
    if component == NODE:
        org = network.organisation(c.organisation)
        assert org is not None
        files.append(
            ("trail signing key", loaded.resolve(c.log_key), lambda p: read_log_key(p, org.log_key))
        )
        if c.envelope_key:
            files.append(
                (
                    "envelope key",
                    loaded.resolve(c.envelope_key),
                    lambda p: read_envelope_key(p, org.envelope_key),
                )
            )
        if c.question_key:
            files.append(
                (
                    "question key",
                    loaded.resolve(c.question_key),
                    lambda p: read_note_key(p, org.question_key, "question key"),
                )
            )
    elif component == COORDINATOR:
        files.append(
            (
                "log signing key",
                loaded.resolve(c.log_key),
                lambda p: read_log_key(p, network.coordinator.log_key),
            )
        )
    else:
        from betrokken.keyservice.keys import KeyRing, read_seed

        files.append(
            (
                "log signing key",
                loaded.resolve(c.log_key),
                lambda p: read_log_key(p, network.keyservice.log_key),
            )
        )
        files.append(
            (
                "OPRF seed",
                loaded.resolve(c.oprf_seed),
                lambda p: KeyRing.load(read_seed(p), network, str(p)),
            )
        )
    for what, path, check in files:
        if not path.is_file():
            yield Finding(PROBLEM, what, f"{path} does not exist", "correct the path in the file")
            continue
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            yield Finding(
                PROBLEM,
                what,
                f"{path} has mode {mode:o}: others on this machine can read it",
                f"chmod 600 {path} (and keep it owned by the service's account)",
            )
            continue
        if check is not None:
            try:
                check(path)
            except BetrokkenError as exc:
                yield Finding(PROBLEM, what, exc.message, exc.hint or "")
                continue
        pinned = " and matches the network file" if check is not None else ""
        yield Finding(OK, what, f"{path} (mode {mode:o}){pinned}")


# --- the clock ----------------------------------------------------------------------------------
class _Timex(ctypes.Structure):
    """Linux ``struct timex`` (adjtimex(2)), read-only use."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("padding", ctypes.c_int * 11),
    ]


STA_UNSYNC = 0x0040
TIME_ERROR = 5


def clock_synchronised() -> tuple[bool | None, str]:
    """Whether the system clock is synchronised (NTP), and how that was found out."""
    timedatectl = shutil.which("timedatectl")
    if timedatectl:
        try:
            done = subprocess.run(
                [timedatectl, "show", "-p", "NTPSynchronized", "--value"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
            if done.returncode == 0 and done.stdout.strip() in ("yes", "no"):
                return done.stdout.strip() == "yes", "timedatectl"
        except (OSError, subprocess.SubprocessError):
            pass
    name = ctypes.util.find_library("c")
    if name:
        try:
            timex = _Timex()
            state = ctypes.CDLL(name, use_errno=True).adjtimex(ctypes.byref(timex))
        except (OSError, AttributeError):
            return None, "no way to ask"
        if state < 0:
            return None, "adjtimex failed"
        synced = state != TIME_ERROR and not timex.status & STA_UNSYNC
        return synced, f"the kernel (maximum error {timex.maxerror / 1000:.0f} ms)"
    return None, "no way to ask"


def _clock(component: str, loaded: Loaded[Any]) -> Iterator[Finding]:
    window = loaded.network.coordinator.freshness_seconds
    if component == NODE:
        yield _coordinator_clock(loaded)
    synced, how = clock_synchronised()
    if synced:
        yield Finding(OK, "clock", f"synchronised (NTP), according to {how}")
        return
    state = "not synchronised" if synced is False else "of unknown synchronisation"
    yield Finding(
        WARNING,
        "clock",
        f"the system clock is {state} ({how}); questions signed more than {window} s from the "
        "coordinator's and the nodes' clocks are refused as stale",
        "enable NTP (systemd-timesyncd or chrony) and check `timedatectl`",
    )


def _coordinator_clock(loaded: Loaded[Any]) -> Finding:
    """The coordinator's clock as the running node measured it last (node/clockwatch.py)."""
    from betrokken.node.clockwatch import read_measured
    from betrokken.node.server import clock_path

    path = clock_path(loaded)
    measured = read_measured(path)
    if measured is None:
        return Finding(
            WARNING,
            "coordinator clock",
            f"nog niet gemeten / not measured yet ({path} does not exist)",
            "start the node, or run `betrokken node witness --once`: both measure it",
        )
    if measured.off:
        return Finding(
            PROBLEM,
            "coordinator clock",
            measured.describe(),
            "find the clock that is off (this machine's: `timedatectl`; the coordinator's: "
            "`betrokken status` there shows every node's offset) and correct it (NTP)",
        )
    return Finding(OK, "coordinator clock", measured.describe())


# --- the database -------------------------------------------------------------------------------
def _database(component: str, loaded: Loaded[Any]) -> Iterator[Finding]:
    from betrokken import migrations
    from betrokken.db import redacted

    url = loaded.component.database
    shown = redacted(url)
    path = sqlite_path(url)
    if path is not None:
        if not path.parent.is_dir():
            yield Finding(
                PROBLEM,
                "database",
                f"the folder {path.parent} does not exist",
                "create it, owned by the service's account, mode 0700",
            )
            return
        free = shutil.disk_usage(path.parent).free
        if free < DISK_WARNING_BYTES:
            yield Finding(
                WARNING,
                "disk space",
                f"only {free // (1 << 20)} MiB free in {path.parent}",
                "free space or move the database: a full disk stops every write (and so every "
                "answer)",
            )
        else:
            yield Finding(OK, "disk space", f"{free // (1 << 30)} GiB free in {path.parent}")
        if not path.exists():
            yield Finding(
                OK, "database", f"{path} does not exist yet: it is created at the first start"
            )
            return
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            yield Finding(
                WARNING,
                "database file",
                f"{path} has mode {mode:o}: others can read it",
                f"chmod 600 {path}* (the -wal and -shm files too)",
            )
    engine = raw_engine(url)
    try:
        try:
            found = migrations.state(engine, component)
        except Exception as exc:
            cause = str(getattr(exc, "orig", exc)).strip().splitlines()
            yield Finding(
                PROBLEM,
                "database",
                f"{shown} cannot be reached ({(cause or ['?'])[0][:200]})",
                "check the URL in 'database', that the server runs and accepts this account",
            )
            return
        yield Finding(OK, "database", f"{shown} can be reached")
        if found.status is migrations.Status.EMPTY:
            if component == NODE:
                lost = _node_anchor(loaded, None)
                if lost is not None:
                    yield lost
                    return
            yield Finding(OK, "schema", "empty: created at the current schema at the first start")
            return
        if found.status is not migrations.Status.CURRENT:
            error = migrations.refusal(found, shown, str(loaded.path))
            yield Finding(PROBLEM, "schema", error.message, error.hint or "")
            return
        yield Finding(OK, "schema", found.describe())
        try:
            with engine.connect() as conn:
                conn.execute(text("UPDATE log_head SET size = size WHERE id = 1"))
                conn.rollback()
            yield Finding(OK, "database writable", "a test write succeeded (rolled back)")
        except Exception as exc:
            cause = str(getattr(exc, "orig", exc)).strip().splitlines()
            yield Finding(
                PROBLEM,
                "database writable",
                f"a test write failed ({(cause or ['?'])[0][:200]})",
                "check permissions, disk space, and that the database is not read-only",
            )
        if component == NODE:
            yield from _node_data(loaded, engine)
    finally:
        engine.dispose()


def _node_anchor(loaded: Loaded[Any], engine: Any, active: int | None = None) -> Finding | None:
    """The node's signed state file against its database (node/anchor.py): a database the node
    would refuse, or a registration count that dropped since the anchor was written."""
    from betrokken.audit.log import AuditLog
    from betrokken.errors import DataLost
    from betrokken.node.anchor import NEXT_STEPS_EN, problem
    from betrokken.node.server import anchor_path, read_own_anchor

    fix = NEXT_STEPS_EN + " (docs/operator.md, 'Recovery')"
    try:
        anchor = read_own_anchor(loaded)
    except DataLost as exc:
        return Finding(PROBLEM, "anchor", exc.message.splitlines()[-1], fix)
    if anchor is None:
        return Finding(
            WARNING,
            "anchor",
            f"{anchor_path(loaded)} does not exist yet",
            "start the node once: it writes its state file (before that a lost database "
            "cannot be told from a new one)",
        )
    if engine is None:
        return Finding(
            PROBLEM,
            "anchor",
            f"the node's database is empty, but held {anchor.trail_size:,} trail records and "
            f"{anchor.active:,} active registrations at {anchor.when()}: the node refuses to serve",
            fix,
        )
    why = problem(anchor, AuditLog.attached(engine, None, "node"))
    if why is not None:
        return Finding(PROBLEM, "anchor", why[1] + ": the node refuses to serve", fix)
    if active is not None and active < anchor.active:
        return Finding(
            WARNING,
            "registrations",
            f"{anchor.active - active:,} fewer active registrations than at {anchor.when()} "
            f"({anchor.active:,} -> {active:,})",
            "expiry, withdrawals and `import --sync` end registrations (see the trail); "
            "anything else is a loss: " + fix,
        )
    return Finding(
        OK, "anchor", f"the database holds what the state file anchored ({anchor.when()})"
    )


def _node_data(loaded: Loaded[Any], engine: Any) -> Iterator[Finding]:
    import datetime as dt

    from betrokken.audit.log import RECORDS
    from betrokken.node.store import RegistrationRow

    org = loaded.network.organisation(loaded.component.organisation)
    assert org is not None
    with engine.connect() as conn:
        old = conn.execute(
            select(func.count())
            .select_from(RegistrationRow)
            .where(RegistrationRow.key_id != org.pseudonym_key_id)
        ).scalar_one()
        alarms = conn.execute(
            select(func.count()).select_from(RECORDS).where(RECORDS.c.event == "alarm")
        ).scalar_one()
        active = conn.execute(
            select(func.count())
            .select_from(RegistrationRow)
            .where(RegistrationRow.until >= dt.datetime.now(dt.UTC).date())
        ).scalar_one()
    anchored = _node_anchor(loaded, engine, int(active))
    if anchored is not None:
        yield anchored
    if old:
        yield Finding(
            WARNING,
            "registrations",
            f"{old} registration(s) under an old key id never match a question",
            "re-import the full caseload with `betrokken node import --sync` (docs/operator.md, "
            "'Upgrades')",
        )
    if alarms:
        yield Finding(
            WARNING,
            "alarms",
            f"the node's trail holds {alarms} alarm(s)",
            "see `betrokken node status` and docs/operator.md, 'Alarms'",
        )
    yield from _feeds(loaded, engine)


def _feeds(loaded: Loaded[Any], engine: Any) -> Iterator[Finding]:
    """Each feeding system (docs/operator.md, 'Feeds'): its drop folder, and whether it is quiet
    longer than configured or has an export waiting for a beheerder."""
    import datetime as dt

    from betrokken.node.feeds import read_health

    systems = loaded.component.feeds
    if not systems:
        return
    for system in systems:
        if system.drop_folder is None:
            continue
        folder = loaded.resolve(str(system.drop_folder))
        if not folder.is_dir():
            yield Finding(
                WARNING,
                f"feed {system.name}",
                f"the drop folder {folder} does not exist",
                "create it, writable by the case system's export and by the account that runs "
                "`betrokken node watch`, mode 0700 (the exports hold BSNs)",
            )
    with engine.connect() as conn:
        health = read_health(conn, systems, dt.datetime.now(dt.UTC))
    for feed in health:
        if feed.quiet:
            quiet = int(feed.quiet_for.total_seconds() // 60)
            limit = int((feed.quiet_after or dt.timedelta()).total_seconds() // 60)
            yield Finding(
                WARNING,
                f"feed {feed.system}",
                f"no successful feed for {quiet} minutes (quiet_after_minutes {limit})",
                "check the case system's export and that `betrokken node watch` runs; its "
                "registrations are no longer confirmed and end at the retention term",
            )
        elif feed.held:
            yield Finding(
                WARNING,
                f"feed {feed.system}",
                f"{feed.held} export(s) held back: they would end too many registrations",
                "a beheerder confirms or refuses them in the portal (Feeds)",
            )
        else:
            last = f"{feed.last_success:%Y-%m-%d %H:%M} UTC" if feed.last_success else "never"
            yield Finding(OK, f"feed {feed.system}", f"last success {last}")


# --- peers --------------------------------------------------------------------------------------
def _peers(component: str, loaded: Loaded[Any]) -> Iterator[Finding]:
    for found in peer_health(component, loaded):
        check = "running" if found.name.startswith("this ") else "peer"
        if found.ok:
            yield Finding(OK, check, found.describe())
        elif found.status == "not serving":
            yield Finding(
                WARNING if check == "peer" else PROBLEM,
                check,
                found.describe(),
                "see that component's log for why (its database?)",
            )
        elif "not the" in found.detail or "not authenticated" in found.detail:
            yield Finding(
                PROBLEM,
                check,
                found.describe(),
                "the address answers with another identity: check the network file's address "
                "and tls_name, and the certificates",
            )
        elif check == "running":
            yield Finding(
                WARNING,
                check,
                found.describe(),
                "start it (`betrokken ... serve` or its systemd unit), or ignore this before the "
                "first start",
            )
        else:
            yield Finding(
                WARNING,
                check,
                found.describe(),
                "check the address in the network file and the network path; tell its operator",
            )
