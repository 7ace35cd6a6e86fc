"""Proofs from stored subtree hashes (ADR 0010): equal to the RFC's, O(log n), upgrades, tamper.

Real SQLite files and (where marked) the local PostgreSQL; the reference for every proof is
``crypto.merkle``'s computation from all leaf hashes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, delete, event, select, text, update

from bench.bulklog import add_records, bulk_log
from betrokken.audit.log import HEAD, RECORDS, SUBTREES, AuditLog, LogBase
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.audit.retention import prune_expired
from betrokken.audit.verify import verify_log
from betrokken.crypto import merkle
from betrokken.crypto.note import NoteKey, open_checkpoint
from betrokken.db import make_engine
from betrokken.errors import LogDamaged, MalformedMessage

KEY = NoteKey.generate("betrokken/test/subtrees")
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


def _append_in_batches(log: AuditLog, total: int, seed: int) -> None:
    rng = random.Random(seed)
    done = log.size()
    while done < total:
        batch = min(rng.choice([1, 1, 1, 2, 3, 5, 8]), total - done)
        log.append([_entry(done + i) for i in range(batch)])
        done += batch


def _assert_proofs_equal(log: AuditLog, sizes: Iterable[int]) -> None:
    leaves = log.leaf_hashes()
    for n in sizes:
        tree = leaves[:n]
        for i in range(n):
            assert log.inclusion_proof(i, n) == merkle.inclusion_proof(tree, i), (i, n)
        for m in range(n + 1):
            assert log.consistency_proof(m, n) == merkle.consistency_proof(tree, m), (m, n)


@pytest.fixture(scope="module")
def log_of_300(tmp_path_factory: pytest.TempPathFactory) -> AuditLog:
    log = _log(f"sqlite:///{tmp_path_factory.mktemp('log300') / 'log.db'}")
    _append_in_batches(log, 300, seed=300)
    return log


def test_proofs_from_stored_hashes_equal_proofs_from_all_leaves_for_every_size_up_to_300(
    log_of_300: AuditLog,
) -> None:
    """Every n <= 300, every index and every old size, from one log read at older sizes.

    A proof from the log is ``merkle.inclusion_proof_from`` / ``consistency_proof_from`` over the
    subtree hashes the log reads for it. That assembly is swept once, exhaustively, in
    tests/crypto/test_merkle.py (every index and old size of every n <= 300 against the RFC's
    all-leaves proofs); here, for every n <= 300, every subtree hash any of those proofs asks for
    is read from the stored hashes the way a proof reads it (one read per n) and must be that
    subtree's hash from all the leaves. Whole proofs through the log's own methods are compared
    for every index and old size at the sizes around which the tree's shape turns.
    """
    leaves = log_of_300.leaf_hashes()
    reference: dict[merkle.Subtree, bytes] = {}
    for n in range(1, 301):
        asked: set[merkle.Subtree] = set()
        for i in range(n):
            asked.update(merkle.inclusion_subtrees(i, n))
        for m in range(n + 1):
            asked.update(merkle.consistency_subtrees(m, n))
        for subtree in asked - reference.keys():
            start, end = merkle.subtree_range(*subtree)
            reference[subtree] = merkle.root(leaves[start:end])
        read = log_of_300._subtree_hashes(n, sorted(asked))
        assert read == {subtree: reference[subtree] for subtree in asked}, n
    _assert_proofs_equal(log_of_300, SHAPE_TURNS)
    assert verify_log(log_of_300, KEY.verifier()).ok


# Sizes at which the tree's shape turns (a power of two, one less, one more) and the largest.
SHAPE_TURNS = [63, 64, 65, 127, 128, 129, 255, 256, 257, 299, 300]


def test_the_root_of_every_checkpoint_comes_from_the_stored_hashes(log_of_300: AuditLog) -> None:
    checkpoints = log_of_300.checkpoints()
    assert len(checkpoints) > 50
    for checkpoint in checkpoints:
        assert log_of_300.root(checkpoint.size) == checkpoint.root
    assert log_of_300.root(0) == merkle.EMPTY_ROOT


@pytest.mark.postgres
def test_proofs_from_stored_hashes_equal_proofs_from_all_leaves_on_each_database(
    database_url: str,
) -> None:
    log = _log(database_url)
    _append_in_batches(log, 40, seed=40)
    _assert_proofs_equal(log, range(1, 41))


@pytest.mark.postgres
def test_proofs_beyond_the_log_or_outside_the_tree_are_refused(database_url: str) -> None:
    log = _log(database_url)
    log.append([_entry(i) for i in range(5)])
    for index, size in ((5, 5), (-1, 5), (0, 0), (0, 6), (5, 6)):
        with pytest.raises(MalformedMessage):
            log.inclusion_proof(index, size)
    for old, new in ((0, 6), (4, 3), (-1, 2), (5, 6)):
        with pytest.raises(MalformedMessage):
            log.consistency_proof(old, new)
    assert log.consistency_proof(0, 5) == [] and log.consistency_proof(5, 5) == []
    assert log.inclusion_proof(0, 1) == []


# --- reads are O(log n) -------------------------------------------------------------------------
@dataclass
class Reads:
    rows: int = 0
    statements: int = 0


READS = Reads()


class _CountingCursor(sqlite3.Cursor):
    """Counts every row SQLite hands back, whichever way SQLAlchemy fetches it."""

    def fetchone(self) -> Any:
        row = super().fetchone()
        READS.rows += row is not None
        return row

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = super().fetchmany(self.arraysize if size is None else size)
        READS.rows += len(rows)
        return rows

    def fetchall(self) -> list[Any]:
        rows = super().fetchall()
        READS.rows += len(rows)
        return rows


class _CountingConnection(sqlite3.Connection):
    def cursor(self, factory: Any = _CountingCursor) -> Any:
        return super().cursor(factory)


def _counting_engine(path: Path) -> Engine:
    engine = create_engine(
        f"sqlite:///{path}",
        creator=lambda: sqlite3.connect(path, factory=_CountingConnection, check_same_thread=False),
    )

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        READS.statements += 1

    LogBase.metadata.create_all(engine)
    return engine


@contextmanager
def _reads() -> Iterator[Reads]:
    READS.rows = READS.statements = 0
    counted = Reads()
    yield counted
    counted.rows, counted.statements = READS.rows, READS.statements


def test_a_receipt_at_100k_records_reads_o_log_n_hashes(tmp_path: Path) -> None:
    n = 100_000
    log = bulk_log(_counting_engine(tmp_path / "big.db"), n)
    leaves = log.leaf_hashes()
    with _reads() as reads:
        log.leaf_hashes()
    assert reads.rows == n  # the counter sees every row: what proofs read before ADR 0010
    bound = 2 * n.bit_length() + 1  # <= 2 log2(n) stored hashes, plus the head's size
    roots = {size: merkle.root(leaves[:size]) for size in (n, 65_536, 70_001)}
    for index, size in ((n - 1, n), (0, n), (54_321, n), (65_535, 65_536), (70_000, 70_001)):
        with _reads() as reads:
            proof = log.inclusion_proof(index, size)
        assert reads.rows <= bound and reads.statements == 1, (index, size, reads)
        assert merkle.verify_inclusion(leaves[index], index, size, proof, roots[size])
    for old in (1, 2, 3, 4_095, 65_536, 70_001, n - 1):
        with _reads() as reads:
            proof = log.consistency_proof(old, n)
        # At most one statement: hashes read for an earlier proof are remembered, not read again.
        assert reads.rows <= bound and reads.statements <= 1, (old, reads)
        old_root = merkle.root(leaves[:old])
        assert merkle.verify_consistency(old, n, old_root, roots[n], proof)
    with _reads() as reads:  # the same proofs again: nothing is read
        again = [log.inclusion_proof(n - 1, n), log.consistency_proof(4_095, n)]
    assert reads.statements == 0 and again == [
        merkle.inclusion_proof(leaves, n - 1),
        merkle.consistency_proof(leaves, 4_095),
    ]
    assert verify_log(log, KEY.verifier()).ok


# --- logs made before the subtree table, and writers without it -------------------------------
@pytest.mark.postgres
def test_a_log_from_before_the_subtree_table_is_backfilled_once_on_open(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    log = _log(database_url)
    _append_in_batches(log, 37, seed=37)
    before = [log.inclusion_proof(i, 37) for i in range(37)]
    SUBTREES.drop(log.engine)  # what a database made by the previous schema looks like
    log.engine.dispose()
    with caplog.at_level(logging.INFO, logger="betrokken.audit"):
        reopened = _log(database_url)
    assert any(
        "stored the subtree hashes of records 0..36" in r.getMessage() and " s" in r.getMessage()
        for r in caplog.records
    )
    assert [reopened.inclusion_proof(i, 37) for i in range(37)] == before
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="betrokken.audit"):
        _log(database_url)  # once: nothing is missing now
    assert not caplog.records
    _append_in_batches(reopened, 45, seed=45)
    _assert_proofs_equal(reopened, range(30, 46))
    assert verify_log(reopened, KEY.verifier()).ok


@pytest.mark.postgres
def test_a_backfill_and_concurrent_appends_do_not_interleave(database_url: str) -> None:
    """Two coordinators on one database: one opens (and backfills) while the other appends."""
    log = _log(database_url)
    _append_in_batches(log, 60, seed=60)
    with log.engine.begin() as conn:
        conn.execute(delete(SUBTREES))  # as if an older version had written all of them

    def work(n: int) -> object:
        if n % 4 == 0:
            return _log(database_url)
        return log.append([_entry(1000 + n)])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(16)))
    assert log.size() == 72
    assert verify_log(log, KEY.verifier()).ok
    _assert_proofs_equal(log, range(55, 73))


@pytest.mark.postgres
def test_records_appended_by_a_writer_without_the_table_are_caught_up(database_url: str) -> None:
    log = _log(database_url)
    _append_in_batches(log, 10, seed=10)
    add_records(log.engine, 10, 29)  # an older version of the coordinator appended these
    assert len(log.inclusion_proof(3, 29)) == 5  # the read notices, stores them, and answers
    _assert_proofs_equal(log, range(1, 30))
    add_records(log.engine, 29, 33)
    log.append([_entry(33)])  # an append notices too, under the head's lock
    _assert_proofs_equal(log, range(28, 35))
    assert verify_log(log, KEY.verifier()).ok


@pytest.mark.postgres
def test_pruning_does_not_change_any_proof(database_url: str) -> None:
    log = _log(database_url)
    old = NOW - dt.timedelta(days=6 * 365)
    log.append([_entry(i, old) for i in range(13)])
    _append_in_batches(log, 21, seed=21)
    before = {(i, n): log.inclusion_proof(i, n) for n in (13, 21) for i in range(n)}
    consistency = [log.consistency_proof(m, 21) for m in range(22)]
    assert prune_expired(log, 5, NOW, "dpo").count == 13
    n = log.size()
    assert {(i, s): log.inclusion_proof(i, s) for s in (13, 21) for i in range(s)} == before
    assert [log.consistency_proof(m, 21) for m in range(22)] == consistency
    _assert_proofs_equal(log, range(n, n + 1))
    assert verify_log(log, KEY.verifier()).ok


def test_a_log_rolled_back_by_hand_is_reported_and_appends_continue(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = _log(f"sqlite:///{tmp_path / 'log.db'}")
    _append_in_batches(log, 40, seed=4)
    keep = 29
    frontier = merkle.Frontier()
    for leaf in log.leaf_hashes(keep):
        frontier.append(leaf)
    with log.engine.begin() as conn:  # an operator removes the last records, not their hashes
        conn.execute(text('delete from log_subjects where "index" >= :k'), {"k": keep})
        conn.execute(delete(RECORDS).where(RECORDS.c.index >= keep))
        conn.execute(text("delete from log_checkpoints where size > :k"), {"k": keep})
        conn.execute(update(HEAD).values(size=keep, frontier=json.dumps(frontier.to_json())))
    result = verify_log(log, KEY.verifier())
    assert not result.ok and result.first_bad_index == keep
    assert "records were removed" in result.summary()
    with caplog.at_level(logging.WARNING, logger="betrokken.audit"):
        log.append([_entry(100), _entry(101)])  # the stale hashes make way for the new records
    assert "rolled back by hand" in caplog.text
    _assert_proofs_equal(log, range(25, 32))
    assert verify_log(log, KEY.verifier()).ok


# --- property tests -------------------------------------------------------------------------------
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=12), st.data())
def test_random_append_sequences_give_proofs_that_verify(
    batches: list[int], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        log = _log(f"sqlite:///{Path(folder) / 'log.db'}")
        done = 0
        for batch in batches:
            indices = log.append([_entry(done + i) for i in range(batch)])
            done += batch
            latest = log.latest_checkpoint()
            assert latest is not None and latest.size == done
            root = open_checkpoint(latest.note, KEY.verifier(), KEY.name).root
            leaves = log.leaf_hashes()
            for index in (indices[-1], data.draw(st.integers(0, done - 1))):
                proof = log.inclusion_proof(index, done)
                assert merkle.verify_inclusion(leaves[index], index, done, proof, root)
            older = data.draw(st.sampled_from([c.size for c in log.checkpoints()]))
            old = log.checkpoint(older)
            assert old is not None
            proof = log.consistency_proof(older, done)
            assert merkle.verify_consistency(older, done, old.root, root, proof)
        log.engine.dispose()


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 70), st.data())
def test_a_tampered_stored_subtree_hash_is_found_by_verify(n: int, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as folder:
        log = _log(f"sqlite:///{Path(folder) / 'log.db'}")
        log.append([_entry(i) for i in range(n)])
        with log.engine.connect() as conn:
            positions = [int(p) for p in conn.scalars(select(SUBTREES.c.position))]
        position = data.draw(st.sampled_from(positions))
        level, index = merkle.subtree_at(position)
        start, end = merkle.subtree_range(level, index)
        bit = data.draw(st.integers(0, 255))
        with log.engine.begin() as conn:
            stored = conn.execute(
                select(SUBTREES.c.hash).where(SUBTREES.c.position == position)
            ).scalar_one()
            changed = bytearray(stored)
            changed[bit // 8] ^= 1 << (bit % 8)
            conn.execute(
                update(SUBTREES).where(SUBTREES.c.position == position).values(hash=bytes(changed))
            )
        result = verify_log(log, KEY.verifier())
        assert not result.ok
        assert [p.index for p in result.problems] == [end - 1]
        assert f"subtree hash over records {start}..{end - 1} does not match" in result.summary()
        log.engine.dispose()


def test_a_missing_stored_subtree_hash_is_reported_and_a_proof_needing_it_fails_closed(
    tmp_path: Path,
) -> None:
    log = _log(f"sqlite:///{tmp_path / 'log.db'}")
    log.append([_entry(i) for i in range(20)])
    with log.engine.begin() as conn:
        conn.execute(delete(SUBTREES).where(SUBTREES.c.position == merkle.stored_position(2, 1)))
    result = verify_log(log, KEY.verifier())
    assert [p.index for p in result.problems] == [7]
    assert "records 4..7 is missing" in result.summary()
    # The process that appended remembers the hash it computed (a correct proof); one that
    # reads it from the database (restarted, or a second coordinator) fails closed.
    assert log.inclusion_proof(0, 8) == merkle.inclusion_proof(log.leaf_hashes(8), 0)
    reader = AuditLog(log.engine, KEY, KEY.name)
    with pytest.raises(LogDamaged, match="lacks stored hashes"):
        reader.inclusion_proof(0, 8)
    assert reader.inclusion_proof(16, 20) == merkle.inclusion_proof(log.leaf_hashes(), 16)
