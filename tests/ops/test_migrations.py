"""Schema migrations: every chain ends at the tables the code declares, a database of release 0.1
(6fe2f79) upgrades with its data kept and readable by today's code, and an old schema is refused
at start-up — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    Date,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    column,
    insert,
    select,
    table,
    text,
)

from betrokken import migrations
from betrokken.app.ops import raw_engine
from betrokken.audit.keys import read_log_key
from betrokken.audit.log import AuditLog, LogBase
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.audit.witness import WitnessBase
from betrokken.clock import utcnow
from betrokken.config.load import load_coordinator, load_keyservice, load_node
from betrokken.coordinator.anchors import AnchorBase
from betrokken.coordinator.counts import CountBase
from betrokken.coordinator.mailbox import MailboxBase
from betrokken.coordinator.store import AuditStore
from betrokken.crypto.pseudonym import Pseudonym
from betrokken.db import make_engine
from betrokken.errors import SchemaOutdated
from betrokken.keyservice.store import Base as KeyServiceBase
from betrokken.keyservice.store import QuotaStore
from betrokken.node.deferrals import DeferralBase
from betrokken.node.feeds import FeedBase
from betrokken.node.server import open_store, open_witness
from betrokken.node.store import Base as NodeBase
from betrokken.node.store import RegistrationRow
from betrokken.portal.register import RegisterBase
from betrokken.portal.users import PortalBase
from betrokken.requester.late import LateBase
from tests.cli import run_process
from tests.ops.conftest import CopiedNet, run, set_database

pytestmark = pytest.mark.postgres

DECLARED = {
    "node": (
        NodeBase.metadata,
        LogBase.metadata,
        WitnessBase.metadata,
        PortalBase.metadata,
        RegisterBase.metadata,
        FeedBase.metadata,
        DeferralBase.metadata,
        LateBase.metadata,
    ),
    "keyservice": (KeyServiceBase.metadata, LogBase.metadata),
    "coordinator": (
        LogBase.metadata,
        AnchorBase.metadata,
        MailboxBase.metadata,
        CountBase.metadata,
    ),
}


def _declared(component: str) -> MetaData:
    combined = MetaData()
    for metadata in DECLARED[component]:
        for declared in metadata.tables.values():
            declared.to_metadata(combined)
    return combined


def _without_subtrees(engine: Engine) -> None:
    """Release 0.1 had no stored subtree hashes (ADR 0010): today's AuditLog, used here to write
    its records, made some; drop them, as that release's database did not have them."""
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS log_subtrees"))


def _release_0_1(url: str, component: str) -> Engine:
    """A database as release 0.1 left it: revision 0001's tables and no version table."""
    engine = raw_engine(url)
    with engine.begin() as conn:
        migrations._run_upgrade(conn, component, f"{component}_0001")
        conn.execute(text("DROP TABLE alembic_version"))
    return engine


@pytest.mark.parametrize("component", migrations.COMPONENTS)
def test_every_chain_ends_exactly_at_the_tables_the_code_declares(
    database_url: str, component: str
) -> None:
    engine = raw_engine(database_url)
    found = migrations.ensure_current(engine, component, "test")
    assert found.status is migrations.Status.CURRENT
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), _declared(component))
    engine.dispose()
    assert differences == [], (
        f"the {component}'s tables differ from its migration chain; add a revision "
        f"(migrations/README.md): {differences}"
    )


def test_the_head_read_from_the_version_files_is_alembics_head_for_every_chain() -> None:
    """A current database is recognised without importing Alembic (slow to import); the
    shortcut must name the same head as Alembic does."""
    for component in migrations.COMPONENTS:
        assert migrations.head_from_files(component) == migrations.head(component), component


def test_a_fresh_database_is_created_at_the_newest_revision_and_stamped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'node.db'}"
    engine = make_engine(url, NodeBase.metadata, component="node")
    assert migrations.state(engine, "node").revision == migrations.head("node")
    again = make_engine(url, NodeBase.metadata, component="node")  # a second start: used as is
    assert migrations.state(again, "node").status is migrations.Status.CURRENT


def test_code_refuses_a_database_whose_schema_is_older_newer_or_another_components(
    tmp_path: Path,
) -> None:
    old = f"sqlite:///{tmp_path / 'old.db'}"
    _release_0_1(old, "node").dispose()
    with pytest.raises(SchemaOutdated, match="from before schema migrations") as refused:
        make_engine(old, NodeBase.metadata, component="node")
    assert refused.value.exit_code == 5
    assert "betrokken db upgrade" in (refused.value.hint or "")

    newer = f"sqlite:///{tmp_path / 'newer.db'}"
    engine = make_engine(newer, NodeBase.metadata, component="node")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'node_9999'"))
    with pytest.raises(SchemaOutdated, match="newer version"):
        make_engine(newer, NodeBase.metadata, component="node")

    coordinator = f"sqlite:///{tmp_path / 'coordinator.db'}"
    make_engine(coordinator, LogBase.metadata, component="coordinator")
    with pytest.raises(Exception, match="another component's database"):
        make_engine(coordinator, NodeBase.metadata, component="node")


REGISTRATIONS = table(
    "registrations",
    column("id", Integer()),
    column("pseudonym", LargeBinary()),
    column("key_id", String()),
    column("domain", String()),
    column("contact", String()),
    column("since", Date()),
    column("until", Date()),
    column("reference", String()),
    column("disclosure", String()),
    column("created_at", DateTime(timezone=True)),
    column("updated_at", DateTime(timezone=True)),
)
DISCLOSURES = table(
    "disclosures",
    column("at", DateTime(timezone=True)),
    column("answer_id", String()),
    column("requester_organisation", String()),
    column("user", String()),
    column("acted_for", String()),
    column("role", String()),
    column("purpose", String()),
    column("case_reference", String()),
    column("level", String()),
    column("registration_id", Integer()),
    column("registration_reference", String()),
)
WITNESSED = table(
    "witnessed_checkpoints",
    column("size", Integer()),
    column("root", LargeBinary()),
    column("note", Text()),
    column("accepted_at", DateTime(timezone=True)),
)
ALARMS = table(
    "witness_alarms",
    column("at", DateTime(timezone=True)),
    column("kind", String()),
    column("message", Text()),
)


def test_a_release_0_1_node_database_upgrades_with_its_data_kept(
    database_url: str, copied_net: CopiedNet
) -> None:
    config = copied_net.node
    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{copied_net.directory / 'nodes' / 'politie-test' / 'node.db'}"
    set_database(config, database_url)
    loaded = load_node(config)
    org = loaded.network.organisation("politie-test")
    assert org is not None
    days = loaded.network.retention.registration_days
    now = utcnow().replace(microsecond=0)
    today = now.date()
    engine = _release_0_1(database_url, "node")
    open_case, ended_early, old_key = (secrets.token_bytes(64) for _ in range(3))
    # Rows as release 0.1 wrote them: `until` defaulted to since + the retention term.
    rows = [
        # an open case since 800 days, last imported 100 days ago: the old default had ended it
        (open_case, org.pseudonym_key_id, today - dt.timedelta(800), None, now - dt.timedelta(100)),
        # a case the case system ends in 60 days
        (
            ended_early,
            org.pseudonym_key_id,
            today - dt.timedelta(30),
            today + dt.timedelta(60),
            now - dt.timedelta(10),
        ),
        # a registration under the network-wide key of release 0.1: must be re-imported
        (old_key, "k1-0123456789ab", today - dt.timedelta(5), None, now - dt.timedelta(5)),
    ]
    signer = read_log_key(loaded.resolve(loaded.component.log_key), org.log_key)
    trail = AuditLog(engine, signer, signer.name)
    with engine.begin() as conn:
        for value, key_id, since, until, updated in rows:
            conn.execute(
                insert(REGISTRATIONS).values(
                    pseudonym=value,
                    key_id=key_id,
                    domain="veiligheid",
                    contact="desk",
                    since=since,
                    until=until or since + dt.timedelta(days),
                    reference=f"REF-{key_id[-2:]}",
                    created_at=updated,
                    updated_at=updated,
                )
            )
        first = conn.execute(select(REGISTRATIONS.c.id).order_by(REGISTRATIONS.c.id)).scalar()
        conn.execute(
            insert(DISCLOSURES).values(
                at=now,
                answer_id="a-1",
                requester_organisation="zvh-test",
                user="u",
                acted_for="",
                role="regisseur",
                purpose="zvh-triage",
                case_reference="CASE-1",
                level="organisation",
                registration_id=first,
                registration_reference="REF-1",
            )
        )
        trail.append(
            [
                AuditEntry(
                    event=Event.DISCLOSURE,
                    at=now,
                    answer_id="a-1",
                    organisation="zvh-test",
                    purpose="zvh-triage",
                    reason="disclosed: organisation",
                    subjects=(Subject(open_case.hex(), org.pseudonym_key_id, "ps-x", "CASE-1"),),
                )
            ],
            conn,
        )
        conn.execute(
            insert(WITNESSED).values(size=7, root=b"\x01" * 32, note="note", accepted_at=now)
        )
        conn.execute(
            insert(ALARMS).values(
                at=now - dt.timedelta(2),
                kind="fork",
                message="two different logs of 7 records were signed",
            )
        )
    _without_subtrees(engine)
    engine.dispose()

    # Today's code refuses the old schema, with what to do, before touching it.
    refused = run("node", "status", "--config", config)
    assert refused.code == 5, refused.output
    assert "betrokken db upgrade --config" in refused.output
    assert "Traceback" not in refused.output
    current = run("db", "current", "--config", config)
    assert current.code == 5 and "from before schema migrations" in current.output

    upgraded = run("db", "upgrade", "--config", config)
    assert upgraded.code == 0, upgraded.output
    assert "node_0001 (a database from before schema migrations)" in upgraded.stdout
    assert (
        "node_0002, node_0003, node_0004, node_0005, node_0006, node_0007, node_0009, node_0010, "
        "node_0011" in upgraded.stdout
    )
    if database_url.startswith("sqlite"):
        assert "backup:" in upgraded.stdout
        backups = list(config.parent.glob("node.db.before-release-0.1-*"))
        assert len(backups) == 1 and backups[0].stat().st_mode & 0o077 == 0

    # Readable by today's code, with the data kept and meaning what ADR 0011 says.
    store = open_store(load_node(config))
    key = org.pseudonym_key_id
    hits = store.find([Pseudonym(open_case, key), Pseudonym(ended_early, key)], today)
    assert set(hits) == {open_case, ended_early}
    with store.engine.connect() as conn:
        stored = {
            r.pseudonym: r
            for r in conn.execute(select(RegistrationRow.__table__))  # type: ignore[arg-type]
        }
    assert stored[open_case].given_until is None
    assert stored[open_case].until == (now - dt.timedelta(100)).date() + dt.timedelta(days)
    assert stored[ended_early].given_until == today + dt.timedelta(60)
    assert stored[ended_early].until == today + dt.timedelta(60)
    # node_0006: every existing row gets its lookup key (what a question looks it up by).
    from betrokken.crypto.question import lookup_key

    assert all(bytes(r.lookup_key) == lookup_key(bytes(p)) for p, r in stored.items())
    assert all(r.confirmed_at is not None for r in stored.values())
    status = store.status(today)
    assert status.active == 3 and status.disclosures == 1
    assert set(status.key_ids) == {key, "k1-0123456789ab"}
    witness = open_witness(store)
    assert witness.last() is not None and witness.last().size == 7  # type: ignore[union-attr]
    alarms = witness.alarms()
    assert [(a.kind, a.message) for a in alarms] == [
        ("witness-fork", "two different logs of 7 records were signed")
    ]
    store.engine.dispose()
    verified = run("audit", "verify", "--config", config)
    assert verified.code == 0, verified.output
    shown = run("node", "status", "--config", config)
    assert shown.code == 0, shown.output
    assert "witness-fork (1)" in shown.stdout
    assert "registrations under an old key id" in shown.stdout
    again = run("db", "upgrade", "--config", config)
    newest = migrations.head_from_files("node")
    assert again.code == 0 and f"already current at {newest}" in again.stdout


@pytest.mark.e2e
def test_a_release_0_1_key_service_database_upgrades_with_its_quota_use_kept(
    database_url: str, copied_net: CopiedNet
) -> None:
    config = copied_net.keyservice
    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{copied_net.directory / 'keyservice' / 'keyservice.db'}"
    set_database(config, database_url)
    today = utcnow().date()
    engine = _release_0_1(database_url, "keyservice")
    usage = table(
        "quota_usage",
        column("organisation", String()),
        column("day", Date()),
        column("used", Integer()),
    )
    with engine.begin() as conn:
        conn.execute(insert(usage).values(organisation="zvh-test", day=today, used=123))
        conn.execute(
            insert(usage).values(organisation="zvh-test", day=today - dt.timedelta(1), used=9)
        )
    engine.dispose()
    # A server refuses to start on the old schema (as a process: `serve` sets up the process's
    # logging and signals).
    assert run_process("keyservice", "serve", "--config", config, timeout=60).code == 5

    upgraded = run("db", "upgrade", "--config", config)
    assert upgraded.code == 0, upgraded.output
    assert "keyservice_0002" in upgraded.stdout
    store = QuotaStore(load_keyservice(config).component.database)
    assert store.usage(today) == {"zvh-test": 123}
    assert store.usage(today - dt.timedelta(1)) == {"zvh-test": 9}
    assert store.usage(today, use="import") == {}
    assert store.consume("zvh-test", 10, 1000, today, use="import") == 990
    assert store.consume("zvh-test", 10, 1000, today) == 1000 - 133
    store.engine.dispose()


def test_a_release_0_1_coordinator_database_is_taken_over_with_its_log_intact(
    database_url: str, copied_net: CopiedNet
) -> None:
    config = copied_net.coordinator
    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{copied_net.directory / 'coordinator' / 'coordinator.db'}"
    set_database(config, database_url)
    loaded = load_coordinator(config)
    signer = read_log_key(
        loaded.resolve(loaded.component.log_key), loaded.network.coordinator.log_key
    )
    engine = _release_0_1(database_url, "coordinator")
    AuditLog(engine, signer, signer.name).append(
        [AuditEntry(event=Event.SEARCH, at=utcnow(), answer_id="q-1", organisation="zvh-test")]
    )
    _without_subtrees(engine)
    engine.dispose()
    upgraded = run("db", "upgrade", "--config", config)
    assert upgraded.code == 0, upgraded.output
    assert "coordinator_0001 (a database from before schema migrations)" in upgraded.stdout
    store = AuditStore(loaded.component.database, signer, signer.name)
    assert store.log.size() == 1 and store.asked_before("q-1")
    store.engine.dispose()
    assert run("audit", "verify", "--config", config).code == 0
    current = run("db", "current", "--config", config)
    newest = migrations.head_from_files("coordinator")
    assert current.code == 0 and f"current (revision {newest})" in current.stdout
