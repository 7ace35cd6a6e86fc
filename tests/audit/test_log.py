"""The audit log on SQLite and PostgreSQL: appends, proofs, concurrency, pruning, verification."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

from betrokken.audit.log import AuditLog, LogBase
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.audit.report import IndexedEntry, ReportSettings, render_report
from betrokken.audit.retention import prune_expired
from betrokken.audit.verify import verify_log
from betrokken.crypto import merkle
from betrokken.crypto.note import NoteKey, open_checkpoint
from betrokken.db import make_engine

KEY = NoteKey.generate("betrokken/test/coordinator")
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


def _entry(n: int, at: dt.datetime = NOW) -> AuditEntry:
    return AuditEntry(
        event=Event.SEARCH,
        at=at,
        answer_id=f"a-{n}",
        organisation="zvh",
        user="u",
        purpose="zvh-triage",
        subjects=(Subject(f"{n:0128x}", "k1", f"ps-{n}", "C"),),
    )


def _log(url: str) -> AuditLog:
    return AuditLog(make_engine(url, LogBase.metadata), KEY, KEY.name)


@pytest.mark.postgres
def test_append_prove_and_verify(database_url: str) -> None:
    log = _log(database_url)
    assert log.append([_entry(i) for i in range(5)]) == [0, 1, 2, 3, 4]
    for i in range(5, 12):
        log.append([_entry(i)])
    latest = log.latest_checkpoint()
    assert latest is not None and latest.size == 12
    checkpoint = open_checkpoint(latest.note, KEY.verifier(), KEY.name)
    leaves = log.leaf_hashes()
    assert merkle.root(leaves) == checkpoint.root
    old = log.checkpoint(5)
    assert old is not None
    assert merkle.verify_consistency(5, 12, old.root, checkpoint.root, log.consistency_proof(5, 12))
    assert merkle.verify_inclusion(leaves[7], 7, 12, log.inclusion_proof(7, 12), checkpoint.root)
    assert [c.size for c in log.checkpoints()] == [5, *range(6, 13)]
    assert verify_log(log, KEY.verifier()).ok
    assert log.indices_for_subject(f"{3:0128x}") == [3]


@pytest.mark.postgres
def test_concurrent_appends_keep_one_sequence(database_url: str) -> None:
    log = _log(database_url)
    with ThreadPoolExecutor(6) as pool:
        indices = sorted(
            i for batch in pool.map(lambda n: log.append([_entry(n)]), range(40)) for i in batch
        )
    assert indices == list(range(40))
    assert verify_log(log, KEY.verifier()).ok


@pytest.mark.postgres
def test_pruning_keeps_the_tree_verifiable(database_url: str) -> None:
    log = _log(database_url)
    old = NOW - dt.timedelta(days=6 * 365)
    log.append([_entry(i, old) for i in range(4)])
    log.append([_entry(i) for i in range(4, 7)])
    result = prune_expired(log, 5, NOW, "dpo")
    assert (result.count, result.first, result.last) == (4, 0, 3)
    records = list(log.records())
    assert [r.content is None for r in records[:4]] == [True] * 4
    assert records[4].entry is not None
    assert records[-1].entry is not None and records[-1].entry.event is Event.PRUNE
    assert log.indices_for_subject(f"{0:0128x}") == []
    verification = verify_log(log, KEY.verifier())
    assert verification.ok and verification.pruned == 4
    page = render_report(
        [IndexedEntry(r.index, r.entry) for r in records],
        title="t",
        generated_at=NOW,
        settings=ReportSettings(),
    )
    assert "records 0&ndash;3 pruned" in page
    assert prune_expired(log, 5, NOW, "dpo").count == 0


def test_a_log_without_the_right_key_does_not_verify(tmp_path: object) -> None:
    log = _log(f"sqlite:///{tmp_path}/x.db")
    log.append([_entry(0)])
    other = NoteKey.generate(KEY.name)
    result = verify_log(log, other.verifier())
    assert not result.ok and result.first_bad_index == 0


@pytest.mark.postgres
def test_records_appended_through_the_driver_read_back_as_sqlalchemy_wrote_them(
    database_url: str,
) -> None:
    """The append runs plain SQL on the driver (docs/adr/0043): each column, the times (text on
    SQLite) and a batch's subjects included, reads back through SQLAlchemy as it was given."""
    from sqlalchemy import select

    from betrokken.audit.log import CHECKPOINTS, RECORDS, SUBJECTS

    log = _log(database_url)
    at = dt.datetime(2026, 12, 7, 17, 30, 15, 123456, tzinfo=dt.UTC)
    log.append([_entry(0, at)])
    log.append([_entry(1, at), _entry(2, at)])  # several records and subjects in one append
    with log.engine.connect() as conn:
        records = conn.execute(select(RECORDS).order_by(RECORDS.c.index)).all()
        subjects = conn.execute(select(SUBJECTS.c.index, SUBJECTS.c.pseudonym)).all()
        made = conn.execute(select(CHECKPOINTS.c.size, CHECKPOINTS.c.created_at)).all()
    assert [(r.index, r.event, r.answer_id, r.organisation, r.pruned_at) for r in records] == [
        (i, "search", f"a-{i}", "zvh", None) for i in range(3)
    ]
    assert all(r.at.replace(tzinfo=dt.UTC) == at for r in records)
    assert [bytes(r.leaf_hash) for r in records] == log.leaf_hashes()
    assert sorted(subjects) == [(i, f"{i:0128x}") for i in range(3)]
    assert [size for size, _ in made] == [1, 3]
    assert all(isinstance(created, dt.datetime) for _, created in made)
    with log.engine.connect() as conn:  # compared as SQLAlchemy compares them (pruning does)
        between = conn.execute(
            select(RECORDS.c.index).where(
                RECORDS.c.at > at - dt.timedelta(microseconds=1),
                RECORDS.c.at < at + dt.timedelta(microseconds=1),
            )
        ).all()
    assert sorted(i for (i,) in between) == [0, 1, 2]
