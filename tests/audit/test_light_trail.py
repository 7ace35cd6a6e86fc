"""The asking organisation's trail written through the database driver (``betrokken query``,
docs/adr/0044) is the trail SQLAlchemy writes: same rows, same leaves, same checkpoints, read back
identically by :class:`AuditLog` and ``audit verify``, on SQLite and PostgreSQL; and the light
store hands every case it does not vouch for to the full one."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from betrokken.app.devnet import DevNetwork
from betrokken.audit.keys import read_log_key
from betrokken.audit.log import AuditLog, LogBase
from betrokken.audit.record import AuditEntry, Event, Subject
from betrokken.audit.verify import verify_log
from betrokken.audit.witness import WitnessStore
from betrokken.config.load import Loaded, load_node
from betrokken.config.schema import NodeConfig
from betrokken.crypto.note import NoteKey
from betrokken.db import make_engine
from betrokken.errors import QuestionRefused
from betrokken.requester.lighttrail import LightTrail, LightWitness, NotVouched
from tests.witnessing import leaves, signed

AT = dt.datetime(2026, 12, 7, 15, 4, 5, 123456, tzinfo=dt.UTC)


def entry(number: int, *, persons: int = 2) -> AuditEntry:
    return AuditEntry(
        event=Event.OWN_QUERY,
        at=AT + dt.timedelta(minutes=number),
        answer_id=f"answer-{number}",
        organisation="zvh-test",
        user="regisseur-1",
        role="regisseur",
        purpose="zvh-triage",
        subjects=tuple(
            Subject(f"{number:02x}{p:02x}" * 32, "k-test", f"ps-{number}-{p}", f"CASE-{number}")
            for p in range(persons)
        ),
        outcomes={f"ps-{number}-0": {"politie-test": "involved"}},
        completeness="complete",
        reason="answered",
        details={"persons": str(persons), "kind": "person"},
    )


def _loaded(devnet: DevNetwork, url: str) -> Loaded[NodeConfig]:
    loaded = load_node(devnet.node_configs["zvh-test"])
    return dataclasses.replace(
        loaded, component=loaded.component.model_copy(update={"database": url})
    )


@pytest.fixture
def key(devnet: DevNetwork) -> NoteKey:
    """The organisation's own trail key (the full store opens the trail with it too)."""
    loaded = load_node(devnet.node_configs["zvh-test"])
    org = loaded.network.organisation("zvh-test")
    assert org is not None
    return read_log_key(loaded.resolve(loaded.component.log_key), org.log_key)


@pytest.fixture
def node_db(database_url: str, key: NoteKey) -> Iterator[Engine]:
    """The organisation's database as its node makes it: the node's migration chain, the head."""
    engine = make_engine(database_url, LogBase.metadata, component="node")
    AuditLog(engine, key, key.name)
    WitnessStore(engine, AuditLog.attached(engine, key, key.name), "zvh-test")
    yield engine
    engine.dispose()


@pytest.fixture
def light(
    node_db: Engine, devnet: DevNetwork, database_url: str, key: NoteKey
) -> Iterator[LightTrail]:
    trail = LightTrail.open(_loaded(devnet, database_url), key)
    yield trail
    trail.close()


def _rows(engine: Engine, table: str, columns: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT {columns} FROM {table} ORDER BY 1"))]


def test_a_question_kept_through_the_driver_reads_back_as_if_sqlalchemy_had_kept_it(
    node_db: Engine, light: LightTrail, database_url: str, tmp_path: Any, key: NoteKey
) -> None:
    # The same questions kept the usual way, in a database of the same kind made the same way.
    other_url = f"sqlite:///{tmp_path / 'full.db'}" if database_url.startswith("sqlite") else None
    witness = LightWitness(light)
    history = leaves(9)
    first_cp, first_note = signed(history[:5])
    later_cp, later_note = signed(history)
    for number in range(3):
        with light.begin() as conn:
            assert light.append([entry(number, persons=number + 1)], conn) == [number]
            if number == 0:
                assert witness.last() is None  # read inside the write: nothing rolled back
                witness.accept(first_cp, first_note, conn)
            else:
                witness.seen(later_cp, later_note, f"answer-{number}", conn)

    full = AuditLog(node_db, None, key.name)
    records = list(full.records())
    assert [r.index for r in records] == [0, 1, 2]
    assert [r.entry for r in records] == [entry(n, persons=n + 1) for n in range(3)]
    assert [r.checked()[1] for r in records] == [None, None, None]
    assert list(light.records()) == records
    since = AT + dt.timedelta(seconds=30)
    assert list(
        light.records(start=1, since=since, organisation="zvh-test", event="own-query")
    ) == (list(full.records(start=1, since=since, organisation="zvh-test", event="own-query")))
    assert full.indices_for_subject("0100" * 32) == [1]
    assert verify_log(full, key.verifier()).problems == []
    assert [c.size for c in full.checkpoints()] == [1, 2, 3]

    state = WitnessStore(node_db, full, "zvh-test")
    last = state.last()
    assert last is not None and (last.size, last.root, last.note) == (5, first_cp.root, first_note)
    assert isinstance(last.accepted_at, dt.datetime)
    assert witness.last() == last
    assert _rows(node_db, "seen_checkpoints", "size, answer_ids") == [(9, "answer-1,answer-2")]

    if other_url is None:
        return
    engine = make_engine(other_url, LogBase.metadata, component="node")
    try:
        usual = AuditLog(engine, key, key.name)
        store = WitnessStore(engine, usual, "zvh-test")
        for number in range(3):
            with engine.begin() as conn:
                usual.append([entry(number, persons=number + 1)], conn)
                if number == 0:
                    store.accept(first_cp, first_note, conn)
                else:
                    store.seen(later_cp, later_note, f"answer-{number}", conn)
        for table, columns in (
            ("log_records", '"index", leaf_hash, content, at, event, answer_id, organisation'),
            ("log_subjects", '"index", pseudonym'),
            ("log_subtrees", "position, hash"),
            ("log_head", "size, frontier"),
            ("log_checkpoints", "size, root, note"),
            ("witnessed_checkpoints", "size, root, note"),
            ("seen_checkpoints", "size, root, note, answer_ids"),
        ):
            assert _rows(engine, table, columns) == _rows(node_db, table, columns), table
    finally:
        engine.dispose()


def test_a_second_root_for_a_size_is_a_fork_as_the_full_store_says(light: LightTrail) -> None:
    witness = LightWitness(light)
    cp, note = signed(leaves(6))
    forked, forked_note = signed(leaves(6, "other"))
    with light.begin() as conn:
        witness.seen(cp, note, "answer-1", conn)
    refused = pytest.raises(QuestionRefused, match="two different logs of 6 records")
    with refused as caught, light.begin() as conn:
        light.append([entry(1)], conn)
        witness.seen(forked, forked_note, "answer-2", conn)
    assert caught.value.kind == "fork"
    assert list(light.records()) == []  # the question's record went with it: one transaction


def test_the_light_store_vouches_only_for_a_current_database_with_its_log_up_to_date(
    node_db: Engine, devnet: DevNetwork, database_url: str, tmp_path: Any, key: NoteKey
) -> None:
    url = database_url
    with pytest.raises(NotVouched):  # no database yet: the full store creates it
        LightTrail.open(_loaded(devnet, f"sqlite:///{tmp_path / 'none.db'}"), key)
    assert not (tmp_path / "none.db").exists()
    with node_db.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'node_0001'"))
    with pytest.raises(NotVouched):  # an older schema: the full store refuses it, as ever
        LightTrail.open(_loaded(devnet, url), key)
    with node_db.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'node_9999'"))
    with pytest.raises(NotVouched):  # a newer one too
        LightTrail.open(_loaded(devnet, url), key)


def test_a_log_whose_stored_subtrees_lag_is_left_to_the_full_store(
    node_db: Engine, light: LightTrail, key: NoteKey
) -> None:
    with light.begin() as conn:
        light.append([entry(0)], conn)
    with light.begin() as conn:
        light.append([entry(1)], conn)  # completes the first subtree of two leaves
    with node_db.begin() as conn:
        conn.execute(text("DELETE FROM log_subtrees"))  # a writer that did not store them
    with pytest.raises(NotVouched), light.begin() as conn:
        light.append([entry(2)], conn)
    assert [r.index for r in light.records()] == [0, 1]  # nothing of the refused append
    full, _ = light.full()
    with full.engine.begin() as conn:
        assert full.append([entry(2)], conn) == [2]  # the full store catches up, then appends
    assert verify_log(full, key.verifier()).problems == []
