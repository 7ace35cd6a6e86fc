"""Defer decided by a professional, on real processes (docs/adr/0037).

The politie asks zsm-context about a person the GGZ knows and one it does not. The GGZ defers:
both are "pending" at once. Its professional sees a request for the known person only, and
decides to share; at the end of the term (the test ends it: ``Running.end_the_term``) the GGZ's
node delivers one sealed late answer per question through the coordinator's mailbox, and the
politie collects:
the GGZ with its contact point for the one, "no information given" for the other — never "not
involved". The coordinator's database holds neither case, user nor outcome, and a message it
alters or forges is refused by the politie (an alarm in its trail), never shown.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from betrokken.app.demo import GGZ, POLITIE, ZVH
from betrokken.audit.record import Event
from betrokken.config.load import load_coordinator, load_node
from betrokken.crypto.bsn import Bsn, generate_bsn
from betrokken.db import sqlite_path
from betrokken.node import deferrals
from betrokken.node.server import open_store
from tests.e2e.conftest import Running

pytestmark = pytest.mark.e2e


def _ggz_entry(answer: dict[str, Any]) -> dict[str, Any]:
    return next(o for o in answer["persons"][0]["organisations"] if o["organisation_id"] == GGZ)


def _requests_for(running: Running, answer_id: str) -> list[deferrals.Request]:
    store = open_store(load_node(running.net.node_configs[GGZ]))
    try:
        return [r for r in deferrals.list_requests(store.engine) if r.answer_id == answer_id]
    finally:
        store.engine.dispose()


def _wait_for(what: str, check: Any, seconds: float = 120) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.5)


def _coordinator_db(running: Running) -> Path:
    loaded = load_coordinator(running.net.coordinator_config)
    path = sqlite_path(loaded.component.database)
    assert path is not None
    return loaded.resolve(str(path)) if not path.is_absolute() else path


def _mailbox(running: Running, answer_id: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(_coordinator_db(running)) as db:
        return db.execute(
            "SELECT id, sealed, signature, answer_id FROM mailbox WHERE answer_id = ?",
            (answer_id,),
        ).fetchall()


def _collect(running: Running) -> Any:
    return running.run("collect", "--config", str(running.net.node_configs[POLITIE]), "--json")


def _late(collected: Any, answer_id: str) -> dict[str, Any] | None:
    return next((a for a in collected.json["late_answers"] if a["answer_id"] == answer_id), None)


def test_a_defer_partners_professional_decides_and_the_asker_collects_the_decision(
    running: Running, ggz_only: Bsn
) -> None:
    hit = running.query(POLITIE, ggz_only.digits, "zsm-context", "ZSM-DEFER-HIT")
    miss = running.query(POLITIE, running.named["nowhere"].digits, "zsm-context", "ZSM-DEFER-MISS")
    assert hit.code == 0 and miss.code == 0, hit.output + miss.output
    # At once: "pending" for both, the same answer; never "not involved".
    assert _ggz_entry(hit.json) == _ggz_entry(miss.json)
    assert _ggz_entry(hit.json)["outcome"] == "pending"
    hit_id, miss_id = hit.json["answer_id"], miss.json["answer_id"]

    # The GGZ's professional sees a request for the person known there, and nothing for the miss.
    [request] = _wait_for("the GGZ's request", lambda: _requests_for(running, hit_id))
    assert request.case == "ZSM-DEFER-HIT" and request.requester == POLITIE
    assert _requests_for(running, miss_id) == []
    assert ggz_only.digits not in repr(request)

    # It decides to share (consent), through the portal's door, as a regisseur of the GGZ.
    store = open_store(load_node(running.net.node_configs[GGZ]))
    try:
        decided = deferrals.decide(
            store.engine,
            store.trail,
            running.network,
            GGZ,
            request.id,
            "p.rofessional",
            frozenset({"regisseur"}),
            "delen",
            "toestemming",
            dt.datetime.now(dt.UTC),
        )
        assert decided.decision == "delen"
        decisions = [
            r
            for r in store.trail.records(event=Event.DECISION)
            if r.content is not None and hit_id in r.content
        ]
        assert any("delen: toestemming" in r.content for r in decisions if r.content)
    finally:
        store.engine.dispose()

    # Nothing reaches the politie before the term ends; then both late answers do.
    early = _collect(running)
    assert early.code == 0 and not _late(early, hit_id) and not _late(early, miss_id)
    running.end_the_term(GGZ, hit_id, miss_id)
    hit_late = _wait_for(
        "the late answers in the politie's mailbox",
        lambda: (
            _late(collected := _collect(running), hit_id)
            and _late(collected, miss_id)
            and collected
        ),
    )
    shared = _late(hit_late, hit_id)
    told = _late(hit_late, miss_id)
    assert shared is not None and told is not None
    [answer] = shared["answers"]
    ggz = running.network.organisation(GGZ)
    assert ggz is not None
    assert answer["outcome"] == "involved" and answer["organisation_id"] == GGZ
    assert answer["case"] == "ZSM-DEFER-HIT" and answer["contact"]
    [nothing] = told["answers"]
    assert nothing["outcome"] == "no-disclosure" and "contact" not in nothing
    # Collected once: the mailbox is empty for both, and the GGZ's rows are gone.
    assert _mailbox(running, hit_id) == [] and _mailbox(running, miss_id) == []
    assert _requests_for(running, hit_id) == []


def test_the_coordinators_mailbox_holds_no_case_user_or_outcome_and_cannot_alter_a_message(
    running: Running,
) -> None:
    """The insider: the coordinator's operator reads its database while a late answer waits,
    then alters it and plants a forged one; the politie refuses both and shows neither."""
    bsn = next(iter(running.truth.registrations[GGZ]))
    asked = running.query(POLITIE, bsn.digits, "zsm-context", "ZSM-INSIDER-CASE")
    assert asked.code == 0, asked.output
    answer_id = asked.json["answer_id"]
    running.end_the_term(GGZ, answer_id)
    rows = _wait_for("a late answer waiting", lambda: _mailbox(running, answer_id))
    data = _coordinator_db(running).read_bytes()
    wal = _coordinator_db(running).with_name(_coordinator_db(running).name + "-wal")
    if wal.exists():
        data += wal.read_bytes()
    assert b"ZSM-INSIDER-CASE" not in data and b"tester" not in data
    for outcome in (b'"involved"', b'"no-disclosure"', b'"pending"'):
        assert outcome not in data
    # Alter one byte of the sealed answer.
    [(row_id, sealed, _, _)] = rows
    altered = bytes(sealed[:-1]) + bytes([sealed[-1] ^ 1])
    with sqlite3.connect(_coordinator_db(running)) as db:
        db.execute("UPDATE mailbox SET sealed = ? WHERE id = ?", (altered, row_id))
    collected = _collect(running)
    assert collected.code == 8, collected.output  # refused: verification failed
    assert collected.json["refused"] == 1 and _late(collected, answer_id) is None
    store = open_store(load_node(running.net.node_configs[POLITIE]))
    try:
        alarms = [
            r.content
            for r in store.trail.records(event=Event.ALARM)
            if r.content and "late-message-refused" in r.content and answer_id in r.content
        ]
        assert alarms
    finally:
        store.engine.dispose()


def test_a_partner_that_registers_the_person_later_tells_the_earlier_asker(
    running: Running,
) -> None:
    """The VIR's core act without its index: the ZVH asks about a person nobody knows and leaves
    a watch; the politie's node keeps only the person's lookup hash and the sealed item (it cannot
    read the case); when the politie registers the person, the ZVH is told "now also involved:
    politie", with its contact point and the ZVH's own case."""
    rng = random.Random(37)
    known = running.all_bsns()
    person = next(b for b in iter(lambda: generate_bsn(rng), None) if b.digits not in known)
    running.typed.add(person.digits)
    case = "ZVH-WATCH-0037"
    asked = running.query(ZVH, person.digits, "zvh-triage", case, "--watch-days", "30")
    assert asked.code == 0, asked.output
    answer_id = asked.json["answer_id"]
    outcomes = {o["outcome"] for o in asked.json["persons"][0]["organisations"]}
    assert outcomes <= {"not-involved"}  # known nowhere yet

    node = load_node(running.net.node_configs[POLITIE])
    politie_db = sqlite_path(node.component.database)
    assert politie_db is not None

    def watched() -> list[Any]:
        with sqlite3.connect(politie_db) as db:
            return db.execute(
                "SELECT answer_id FROM watches WHERE answer_id = ?", (answer_id,)
            ).fetchall()

    _wait_for("the politie's watch", watched)
    data = politie_db.read_bytes()
    wal = politie_db.with_name(politie_db.name + "-wal")
    if wal.exists():
        data += wal.read_bytes()
    assert case.encode() not in data  # sealed: the node cannot read whose case it is

    registered = running.run(
        "node", "register", "--config", str(running.net.node_configs[POLITIE]), "--bsn", "-",
        "--reference", "PNH-LATER-0037", stdin=person.digits + "\n",
    )  # fmt: skip
    assert registered.code == 0, registered.output
    try:
        collect = ["collect", "--config", str(running.net.node_configs[ZVH]), "--json"]

        def signalled() -> dict[str, Any] | None:
            done = running.run(*collect)
            return next((a for a in done.json["late_answers"] if a["answer_id"] == answer_id), None)

        signal = _wait_for("the ZVH's signal", signalled)
        assert signal["kind"] == "signal" and signal["from"] == POLITIE
        [told] = signal["answers"]
        assert told["outcome"] == "involved" and told["organisation_id"] == POLITIE
        assert told["case"] == case and told["contact"]
        assert watched() == []  # the watch is gone once it signalled
    finally:
        running.run(
            "node", "withdraw", "--config", str(running.net.node_configs[POLITIE]), "--bsn", "-",
            stdin=person.digits + "\n",
        )  # fmt: skip
