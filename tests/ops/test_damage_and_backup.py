"""A log that survives its own damage, and backups that restore: `audit log` and `audit report`
show every good record and name the bad ones; a question over a log whose rows were removed is
refused with what to do, never an internal error; `backup` copies a running component's
database and checks the copy, `restore` puts it back (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from betrokken.audit.keys import read_log_key
from betrokken.audit.record import AuditEntry, Event
from betrokken.clock import utcnow
from betrokken.config.load import load_coordinator
from betrokken.coordinator.store import AuditStore
from betrokken.errors import LogDamaged
from tests.ops.conftest import CopiedNet, run, set_database

pytestmark = pytest.mark.postgres


def _store(config: Path) -> AuditStore:
    loaded = load_coordinator(config)
    signer = read_log_key(
        loaded.resolve(loaded.component.log_key), loaded.network.coordinator.log_key
    )
    return AuditStore(loaded.component.database, signer, signer.name)


def _fill(store: AuditStore, count: int) -> None:
    for i in range(count):
        store.append(
            AuditEntry(
                event=Event.SEARCH,
                at=utcnow(),
                answer_id=f"q-{i}",
                organisation="zvh-test",
                purpose="zvh-triage",
            )
        )


def _sql(url: str, *statements: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def _coordinator_url(database_url: str, copied_net: CopiedNet) -> str:
    if database_url.startswith("sqlite"):
        return f"sqlite:///{copied_net.directory / 'coordinator' / 'coordinator.db'}"
    return database_url


def test_audit_log_and_report_show_every_good_record_and_name_the_damaged_ones(
    database_url: str, copied_net: CopiedNet, tmp_path: Path
) -> None:
    """The fault: one altered record made `audit log` and `audit report` fail completely
    ("stored record is not in canonical form")."""
    config = copied_net.coordinator
    url = _coordinator_url(database_url, copied_net)
    set_database(config, url)
    store = _store(config)
    _fill(store, 30)
    store.engine.dispose()
    _sql(
        url,
        # altered by hand: still canonical JSON, but no longer what its leaf hash commits to
        "UPDATE log_records SET content = replace(content, 'q-12', 'q-99') WHERE \"index\" = 12",
        # not canonical any more
        "UPDATE log_records SET content = content || ' ' WHERE \"index\" = 20",
        'DELETE FROM log_records WHERE "index" BETWEEN 5 AND 7',
    )
    shown = run("audit", "log", "--config", config, "--format", "json", "--user", "dpo")
    assert shown.code == 8, shown.stderr
    rows = json.loads(shown.stdout)
    indices = {row["index"] for row in rows}
    assert len(indices & set(range(30))) == 30 - 3 - 2  # every good record
    assert not indices & {5, 6, 7, 12, 20}
    assert "DAMAGED record 12: content does not match its leaf hash (altered)" in shown.stderr
    assert "DAMAGED record 20: content is unreadable" in shown.stderr
    assert "DAMAGED record 5: missing: records 5..7 were removed" in shown.stderr

    out = tmp_path / "report.html"
    report = run("audit", "report", "--config", config, "--out", out, "--user", "dpo")
    assert report.code == 8 and out.is_file(), report.stderr
    page = out.read_text()
    assert "damaged records not in this report" in page and "12: content does not match" in page


def test_a_question_over_a_log_whose_rows_were_removed_is_refused_with_what_to_do(
    database_url: str, copied_net: CopiedNet
) -> None:
    """The fault: deleted rows made every question end in "internal error"."""
    config = copied_net.coordinator
    url = _coordinator_url(database_url, copied_net)
    set_database(config, url)
    store = _store(config)
    _fill(store, 40)
    store.engine.dispose()
    _sql(url, 'DELETE FROM log_records WHERE "index" BETWEEN 5 AND 9', "DELETE FROM log_subtrees")
    damaged = _store(config)
    index = damaged.append(
        AuditEntry(event=Event.SEARCH, at=utcnow(), answer_id="q-new", organisation="zvh-test")
    )  # the question is still recorded...
    with pytest.raises(LogDamaged) as refused:  # ...and refused, not answered without a proof
        damaged.receipt(index)
    assert refused.value.exit_code == 7
    assert "36 of 41 records are stored" in refused.value.message
    assert "betrokken restore" in (refused.value.hint or "")
    damaged.engine.dispose()


def test_a_backup_is_checked_after_writing_and_restores_the_log(
    database_url: str, copied_net: CopiedNet, tmp_path: Path
) -> None:
    config = copied_net.coordinator
    url = _coordinator_url(database_url, copied_net)
    set_database(config, url)
    store = _store(config)
    _fill(store, 12)
    store.engine.dispose()
    backup = tmp_path / "coordinator.backup"
    made = run("backup", "--config", config, backup)
    assert made.code == 0, made.stderr
    assert "verified" in made.stdout
    assert backup.stat().st_mode & 0o777 == 0o600
    assert run("backup", "--config", config, backup).code == 2  # never over an existing copy

    _fill(_store(config), 3)  # after the backup
    if url.startswith("sqlite"):
        database = Path(url.removeprefix("sqlite:///"))
        database.unlink()
        Path(f"{database}-wal").unlink(missing_ok=True)
    else:
        _sql(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
    restored = run("restore", "--config", config, backup)
    assert restored.code == 0, restored.stderr
    again = _store(config)
    assert again.log.size() == 12
    verified = run("audit", "verify", "--config", config)
    assert verified.code == 0, verified.stdout + verified.stderr
    again.engine.dispose()


def test_a_damaged_backup_is_refused_before_it_replaces_anything(
    copied_net: CopiedNet, tmp_path: Path
) -> None:
    config = copied_net.coordinator
    set_database(config, f"sqlite:///{copied_net.directory / 'coordinator' / 'coordinator.db'}")
    store = _store(config)
    _fill(store, 5)
    store.engine.dispose()
    broken = tmp_path / "broken.backup"
    broken.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    refused = run("restore", "--config", config, broken)
    assert refused.code == 8, refused.stderr
    assert _store(config).log.size() == 5  # the database that was there is untouched
